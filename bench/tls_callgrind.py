#!/usr/bin/env python3
"""Instructions and simulated cache misses per request of a distcache server over
TLS (or plain text), by callgrind switched on around a fixed pipelined workload.

A scratch tool of the TLS record-path work (docs/benchmarks.md, "TLS record
path"): the server runs under ``valgrind --tool=callgrind --instr-atstart=no``,
``-c`` TLS connections (client certificates, made with trustme) do their
handshake, then ``-r`` rounds of ``-P`` pipelined GETs (or SETs) per connection
are counted. ``CONC=1``: each round sends on every connection before reading any
reply (several connections ready per loop turn, as under redis-benchmark);
``CSIM=1``: cache simulation (I1/D1 misses). Load-independent, unlike timings.

    CONC=1 CSIM=1 python bench/tls_callgrind.py .            # this tree, over TLS
    CONC=1 CSIM=1 python bench/tls_callgrind.py . --plain    # the same, plain text
"""
import argparse, os, socket, ssl, subprocess, sys, time, tempfile, glob, re
import trustme
D = tempfile.mkdtemp()
_ca = trustme.CA()
_ca.cert_pem.write_to_path(f"{D}/ca.crt")
for _name, _leaf in (("server", _ca.issue_cert("127.0.0.1")), ("client", _ca.issue_cert("bench@example.test"))):
    _leaf.cert_chain_pems[0].write_to_path(f"{D}/{_name}.crt")
    _leaf.private_key_pem.write_to_path(f"{D}/{_name}.key")
ap = argparse.ArgumentParser()
ap.add_argument("tree", help="the source tree to run (PYTHONPATH)"); ap.add_argument("--plain", action="store_true")
ap.add_argument("-P", type=int, default=16); ap.add_argument("-r", type=int, default=100)
ap.add_argument("-c", type=int, default=10); ap.add_argument("-t", default="get")
ap.add_argument("--loop", default="uvloop"); ap.add_argument("--keep", action="store_true")
a = ap.parse_args()
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
port, tport = free(), free()
w = tempfile.mkdtemp()
env = dict(os.environ, PYTHONPATH=a.tree, PYTHONHASHSEED="0")
out = os.path.join(w, "cg.out")
argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no"] + (["--cache-sim=yes"] if os.environ.get("CSIM") else []) + [ f"--callgrind-out-file={out}",
        sys.executable, "-m", "distcache", "server", "--port", str(port), "--bind", "127.0.0.1",
        "--dir", w, "--save", "", "--appendonly", "no", "--event-loop", a.loop, "--parser", "hiredis",
        "--tls-port", str(tport), "--tls-cert-file", f"{D}/server.crt", "--tls-key-file", f"{D}/server.key",
        "--tls-ca-cert-file", f"{D}/ca.crt"]
proc = subprocess.Popen(argv, env=env, stdout=open(os.path.join(w, "log"), "w"), stderr=subprocess.STDOUT)
deadline = time.time() + 120
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"PING\r\n")
        if s.recv(10) == b"+PONG\r\n": s.close(); break
    except OSError: pass
    if time.time() > deadline: sys.exit("no server")
    time.sleep(0.3)
ctx = ssl.create_default_context(cafile=f"{D}/ca.crt")
ctx.load_cert_chain(f"{D}/client.crt", f"{D}/client.key")
conns = []
for i in range(a.c):
    s = socket.create_connection(("127.0.0.1", port if a.plain else tport))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not a.plain: s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    conns.append(s)
if a.t == "get":
    req = b"*2\r\n$3\r\nGET\r\n$6\r\nkey:%02d\r\n"; rep = b"$3\r\nxxx\r\n"
else:
    req = b"*3\r\n$3\r\nSET\r\n$6\r\nkey:%02d\r\n$3\r\nxxx\r\n"; rep = b"+OK\r\n"
def rnd():
    if os.environ.get("CONC"):
        for i, s in enumerate(conns):
            s.sendall(b"".join(req % ((i * a.P + j) % 100) for j in range(a.P)))
        for s in conns:
            want = len(rep) * a.P; got = b""
            while len(got) < want:
                got += s.recv(65536)
        return
    for i, s in enumerate(conns):
        s.sendall(b"".join(req % ((i * a.P + j) % 100) for j in range(a.P)))
        want = len(rep) * a.P; got = b""
        while len(got) < want:
            got += s.recv(65536)
# fill keys
for i, s in enumerate(conns):
    s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$6\r\nkey:%02d\r\n$3\r\nxxx\r\n" % k for k in range(100)))
    got = b""
    while len(got) < 500: got += s.recv(65536)
for _ in range(3): rnd()
subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, stdout=subprocess.DEVNULL)
for _ in range(a.r): rnd()
subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, stdout=subprocess.DEVNULL)
for s in conns: s.close()
proc.terminate(); proc.wait(60)
files = glob.glob(out + "*")
tot = 0
for f in files:
    for line in open(f):
        if line.startswith("summary:") or line.startswith("totals:"):
            tot = max(tot, int(line.split()[1]))
    # multiple threads -> sum summaries
tot = sum(int(re.search(r"^totals: (\d+)", open(f).read(), re.M).group(1)) for f in files)
for f in files:
    txt = open(f).read()
    ev = re.search(r"^events: (.*)$", txt, re.M).group(1).split()
    vals = re.search(r"^totals: (.*)$", txt, re.M).group(1).split()
    print("  ".join(f"{e}={int(v)/(a.r*a.c*a.P):,.1f}" for e, v in zip(ev, vals)))
n = a.r * a.c * a.P
print(f"{'plain' if a.plain else 'tls'} {a.t} -P {a.P}: {tot/n:,.0f} Ir/request ({n} requests)")
if a.keep: print("callgrind files:", files)
