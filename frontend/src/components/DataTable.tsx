import type { ReactNode } from "react";

/**
 * A table that scrolls sideways on narrow screens: a caption for screen readers, one header row.
 * `stacked`: on a phone each row becomes a block of "label value" lines instead (cells then
 * need `data-label`, the column's name).
 */
export function DataTable({
  caption,
  columns,
  children,
  stacked = false,
}: {
  caption: string;
  columns: string[];
  children: ReactNode;
  stacked?: boolean;
}) {
  return (
    <div className="table-scroll">
      <table className={stacked ? "stacked" : undefined}>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column} scope="col">
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
