"""Runs an emulator as a child process and stops it when our stdin closes.

The test process holds the write end of our stdin. However it ends (pass, panic, Ctrl-C,
SIGKILL), the pipe closes and the emulator is stopped: no server is ever left running.
"""
import subprocess
import sys
import threading


def main() -> int:
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            child.terminate()
            try:
                child.wait(timeout=3)
            except subprocess.TimeoutExpired:
                # moto finishes in-flight requests on SIGTERM; a dead test needs none of them.
                child.kill()

    threading.Thread(target=watch_stdin, daemon=True).start()
    code = child.wait()
    return code


if __name__ == "__main__":
    sys.exit(main())
