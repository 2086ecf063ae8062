import type { Service } from "../../api/billing";
import { onLinkClick } from "../../router";

/** A module on the dashboard: open it when unlocked, an upgrade call to action when locked. */
export function ServiceCard({ service, openHref }: { service: Service; openHref?: string }) {
  const unlocked = service.free || service.unlocked === true;
  const headingId = `service-${service.id}`;
  return (
    <article
      className={`card service ${unlocked ? "unlocked" : "locked"}`}
      aria-labelledby={headingId}
      data-module={service.id}
      data-state={unlocked ? "unlocked" : "locked"}
    >
      <h3 id={headingId}>
        {service.name}
        <span className={`badge ${unlocked ? "ok" : "muted"}`}>{unlocked ? "Unlocked" : "Locked"}</span>
      </h3>
      <p>{service.description}</p>
      {unlocked ? (
        openHref ? (
          <a href={openHref} onClick={onLinkClick} className="button secondary">
            Open {service.name}
          </a>
        ) : (
          <p className="note">{service.free ? "Included in every plan." : "Included in your plan."}</p>
        )
      ) : (
        <a href={`/pricing?module=${service.id}`} onClick={onLinkClick} className="button">
          Upgrade to unlock {service.name}
        </a>
      )}
    </article>
  );
}
