#!/usr/bin/env python3
"""Tiny TCP logging proxy: tcplog.py LISTEN_PORT TARGET_PORT LOGFILE

Every chunk forwarded is appended to LOGFILE as one JSON line:
  {"t": time, "c": conn_id, "d": "c2s"|"s2c"|"open"|"close", "b": base64}
"""
import asyncio, base64, itertools, json, sys, time

LPORT, TPORT, LOG = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ids = itertools.count(1)
logf = open(LOG, "a", buffering=1)


def log(cid, d, data=b""):
    logf.write(json.dumps({"t": time.time(), "c": cid, "d": d,
                           "b": base64.b64encode(data).decode()}) + "\n")


async def pipe(cid, d, r, w):
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            log(cid, d, data)
            w.write(data)
            await w.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            w.close()
        except Exception:
            pass


async def handle(cr, cw):
    cid = next(ids)
    log(cid, "open")
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", TPORT)
    except OSError:
        log(cid, "close")
        cw.close()
        return
    await asyncio.gather(pipe(cid, "c2s", cr, sw), pipe(cid, "s2c", sr, cw))
    log(cid, "close")


async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", LPORT)
    print("proxy listening", LPORT, "->", TPORT, file=sys.stderr, flush=True)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
