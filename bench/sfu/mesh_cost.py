"""The mesh beside the SFU (used by ``run.py --parts mesh``): what each participant uploads and
encodes in a mesh call of P, measured with the SFU bench's own camera source.

For each P (4 and 8) and run: a Podium web process without any Janus (``call.join`` answers
``media_path: "mesh"``) on a free 127.0.0.1 port, and one process (``peers.py mesh``) holding
the P aiortc participants of one call (tests/rtcpeer.py: one connection per other participant,
so one VP8 encoder per link as in a browser; nothing decoded). Over a steady window: per
participant the peer connections, the uplink video streams carrying bytes and their total kbps,
and the process CPU per encoder. That one process is one Python interpreter on a 2-core box:
it saturates (P=4 is 12 encoders, ~1.4 cores of encoding alone), so its uplink kbps show what
the box allowed, not what a participant's own machine would send. Separately, the CPU of one VP8 encode of that source alone
(``peers.py encode``, the cost of each extra link), which the P participants' processes cannot
show cleanly on 2 shared cores (P=8 is 56 encoders: the box saturates and the encoders drop
rate, which the kbps column shows).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import PY, ROOT, log, med, table

HERE = Path(__file__).resolve().parent
JWT_SECRET = "bench-sfu-mesh-secret-" + "k" * 40


class Podium(benchlib.Server):
    def _command(self, work: Path, db: Path):
        env = benchlib.podium_env(f"sqlite+aiosqlite:///{db}", db.parent, self.port, jwt_secret=JWT_SECRET, src=ROOT,
                                  drop=("PODIUM_ENV", "ICE_SERVERS", "TURN_SECRET", "TURN_URLS", "REDIS_URL",
                                        "JANUS_URL", "JANUS_URLS"))
        env["LOG_LEVEL"] = "WARNING"
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        return [PY, "-m", "server", "serve"], env, ROOT


def _cpu(pid: int) -> float:
    from run import proc_cpu_s
    return proc_cpu_s(pid)


def measure(work: Path, sizes: list[int], window: float, runs: int) -> dict:
    mwork = Path(tempfile.mkdtemp(prefix="mesh-", dir=work))
    db = mwork / "podium.db"
    env = benchlib.podium_env(f"sqlite+aiosqlite:///{db}", mwork, 0, jwt_secret=JWT_SECRET, src=ROOT)
    subprocess.run([PY, "-m", "server", "migrate"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seed = mwork / "seed.json"
    subprocess.run([PY, str(ROOT / "bench" / "calls" / "seed.py"), str(seed), "--rooms", str(runs * len(sizes)),
                    "--peers", str(max(sizes))], cwd=ROOT, env=env, check=True)
    rooms = json.loads(seed.read_text())["rooms"]
    out: dict = {"encode": [], "rows": []}
    server = Podium("podium", mwork, db)
    try:
        for run in range(runs):
            probe = subprocess.run([PY, str(HERE / "peers.py"), "encode", "-", "--window", str(min(window, 10))],
                                   cwd=ROOT, capture_output=True, text=True, timeout=120)
            enc = json.loads(probe.stdout.strip().splitlines()[-1])
            enc["loadavg_1m"] = __import__("os").getloadavg()[0]
            out["encode"].append(enc)
            log(f"mesh run {run}: one VP8 encode {enc['encode_core_pct']} % core at {enc['fps']} fps, {enc['kbps']} kbps")
            for k, p in enumerate(sizes):
                room = rooms[run * len(sizes) + k]
                cfg = mwork / f"mesh{run}-{p}.json"
                cfg.write_text(json.dumps({"ws_url": server.url, "room": room["id"], "tokens": room["tokens"][:p]}))
                proc = subprocess.Popen([PY, str(HERE / "peers.py"), "mesh", str(cfg), "--window", str(window)],
                                        cwd=ROOT, stdout=subprocess.PIPE, stderr=open(mwork / f"mesh{run}-{p}.err", "w"),
                                        text=True)
                from run import Lines
                lines = Lines(proc)
                try:
                    lines.expect("MARK", 180)
                    c0, s0, t0 = _cpu(proc.pid), server.cpu_s(), time.monotonic()
                    lines.expect("MARK", window + 60)
                    c1, s1, t1 = _cpu(proc.pid), server.cpu_s(), time.monotonic()
                    res = json.loads(lines.expect("{", 120))
                    try:
                        proc.wait(40)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                except (TimeoutError, RuntimeError) as e:
                    proc.kill()
                    proc.wait()
                    res = {"participants": p, "error": str(e)}
                    log(f"mesh P={p}: {e}")
                    out["rows"].append({"run": run, **res})
                    continue
                secs = t1 - t0
                pp = res["per_participant"]
                res.update({"run": run, "peers_core_pct": round(100 * (c1 - c0) / secs, 1),
                            "podium_core_pct": round(100 * (s1 - s0) / secs, 2),
                            "encoders": sum(x["uplink_video_streams"] for x in pp),
                            "loadavg_1m": __import__("os").getloadavg()[0]})
                res["core_pct_per_encoder"] = round(res["peers_core_pct"] / max(res["encoders"], 1), 2)
                log(f"mesh run {run} P={p}: {res['encoders']} encoders, uplink streams/participant "
                    f"{sorted({x['uplink_video_streams'] for x in pp})}, "
                    f"{med([x['uplink_video_kbps'] for x in pp], 0)} kbps up each, process {res['peers_core_pct']} % core")
                out["rows"].append(res)
                time.sleep(2)
    finally:
        server.stop()
        shutil.rmtree(mwork, ignore_errors=True)
    return out


def report(m: dict, sfu: list[dict] | None) -> str:
    enc = med([e["encode_core_pct"] for e in m["encode"]], 1)
    enc_kbps = med([e["kbps"] for e in m["encode"]], 0)
    rows = []
    if sfu:
        for s in sfu:
            if s["n"]:
                rows.append([f"SFU, teacher + {s['n']} students", 1, 1, s.get("video_kbps_median"),
                             f"{enc} (1 encode)", f"{s.get('janus_pct_per_stream')} % Janus per stream"])
    for p in sorted({r["participants"] for r in m["rows"]}):
        rs = [r for r in m["rows"] if r["participants"] == p and "error" not in r]
        if not rs:
            rows.append([f"mesh of {p}", "failed", None, None, None, None])
            continue
        streams = sorted({x["uplink_video_streams"] for r in rs for x in r["per_participant"]})
        kbps = med([x["uplink_video_kbps"] for r in rs for x in r["per_participant"]], 0)
        rows.append([f"mesh of {p}", p - 1, "/".join(map(str, streams)), kbps,
                     f"{round(enc * (p - 1), 1)} ({p - 1} x one encode)",
                     f"{med([r['core_pct_per_encoder'] for r in rs], 1)} % per encoder in the call "
                     f"(load {', '.join(str(round(r['loadavg_1m'], 1)) for r in rs)})"])
    return (f"Per participant uplink (one VP8 640x480 30 fps encode alone: {enc} % core at {enc_kbps} kbps, "
            f"median of {len(m['encode'])}):\n"
            + table(["call", "encoders per participant (expected)", "uplink video streams measured",
                     "uplink video kbps per participant", "participant encode CPU % core",
                     "measured"], rows))
