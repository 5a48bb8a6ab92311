"""Real packets: ping, probe, dns, http, trace, capture."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from netlab.cli.common import TRAFFIC, LabOpt, Proto, app, err, open_lab, out, output_option
from netlab.cli.printers import DOCUMENT, parse_output, print_document

IPv6Opt = Annotated[bool, typer.Option("-6", "--ipv6", help="To DST's IPv6 address (a pod's, "
                                       "a Service's ClusterIP, a node's, a host's) in a "
                                       "dual-stack lab.")]


@app.command(rich_help_panel=TRAFFIC)
def ping(src: Annotated[str, typer.Argument(help="Pod (NAME or NAMESPACE/NAME) or node/NAME.")],
         dst: Annotated[str, typer.Argument(help="Pod, node/NAME or an IP address.")],
         count: Annotated[int, typer.Option("--count", "-c", min=1, max=1000)] = 3,
         ipv6: IPv6Opt = False, lab: LabOpt = None) -> None:
    """Ping from a pod to a pod or address with real ICMP (ICMPv6 to an IPv6 address, or
    with -6); exit 1 if any reply is missing.

    Examples: netlab ping pod-a pod-b;  netlab ping -6 pod-a pod-b;
    netlab ping pod-a fd00:10:244:1::2
    """
    r = open_lab(lab).ping(src, dst, count, family="IPv6" if ipv6 else None)
    sys.stdout.write(r.output)
    raise typer.Exit(0 if r.ok else 1)


@app.command(rich_help_panel=TRAFFIC)
def probe(src: Annotated[str, typer.Argument(help="Pod ([NS/]NAME), node/NAME, external or "
                                             "internet.")],
          dst: Annotated[str, typer.Argument(help="Pod, svc/[NS/]NAME, node/NAME (with a "
                                             "NodePort), internet, external, or an IP.")],
          port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535,
                                                   help="Default: the Service's first port, "
                                                   "the pod's first port, 80 for internet.")
                          ] = None,
          proto: Annotated[Proto | None, typer.Option("--proto", help="tcp, udp, sctp or "
                                                      "icmp (default: the port's).")] = None,
          timeout: Annotated[float, typer.Option("--timeout", min=0.1)] = 2.0,
          ipv6: IPv6Opt = False,
          output: Annotated[str, output_option(DOCUMENT)] = "table", lab: LabOpt = None) -> None:
    """Send real traffic from SRC to DST and say what came back: which pod answered and
    which client address it saw. Exit 0 when connected, 1 when not.

    Examples: netlab probe pod-a svc/web;  netlab probe external node/node-1 --port 30080;
    netlab probe -6 pod-a pod-b (dual-stack: over IPv6)
    """
    fmt = parse_output(output, DOCUMENT)
    lab_ = open_lab(lab)
    if dst.startswith(("http://", "https://")):
        h = lab_.http(dst, src, timeout=timeout)
        if fmt.machine:
            print_document(fmt, h.to_json())
        else:
            out.print(f"{src} -> {dst}: " + (f"{h.status} {h.reason}, answered by "
                                             f"{h.answered_by}" if h.status else
                                             f"no answer ({h.error})"), highlight=False)
        raise typer.Exit(0 if h.ok else 1)
    r = lab_.probe(src, dst, port, proto.value if proto else None, timeout,
                   family="IPv6" if ipv6 else None)
    if fmt.machine:
        print_document(fmt, r.to_json())
    else:
        host = f"[{r.address}]" if ":" in r.address else r.address
        where = escape(f"{host}:{r.port}/{r.protocol}" if r.port else  # [fd00::1] is no markup
                       f"{r.address}/{r.protocol}")
        if r.connected:
            who = f" answered by {r.answered_by}" if r.answered_by else ""
            seen = f", which saw the client as {r.client_ip}" if r.client_ip else ""
            out.print(f"{src} -> {dst} ({where}): [green]connected[/green]{who}{seen} "
                      f"in {r.seconds * 1000:.1f} ms", highlight=False)
        else:
            out.print(f"{src} -> {dst} ({where}): [red]{r.result}[/red]: {r.detail}",
                      highlight=False)
            hint = lab_.why_unanswered(dst)
            if hint:
                err.print(f"[yellow]hint:[/yellow] {escape(hint)}", highlight=False,
                          soft_wrap=True)
    raise typer.Exit(0 if r.connected else 1)


@app.command(rich_help_panel=TRAFFIC)
def dns(name: Annotated[str, typer.Argument(help="A name, as a pod would use it: web, "
                                            "web.default, web.default.svc.cluster.local, ...")],
        src: Annotated[str | None, typer.Option("--from", help="Pod to ask from (default: the "
                                                "first pod of namespace default).")] = None,
        qtype: Annotated[str, typer.Option("--type", "-t", help="A, AAAA, SRV, PTR, TXT, "
                                           "CNAME, ANY... (default: A, AAAA in a lab "
                                           "whose primary family is IPv6)")] = "",
        server: Annotated[str | None, typer.Option("--server", help="Ask this address "
                                                   "instead of the pod's nameserver (like "
                                                   "dig @SERVER), e.g. the kube-dns IPv6 "
                                                   "ClusterIP.")] = None,
        output: Annotated[str, output_option(DOCUMENT)] = "table", lab: LabOpt = None) -> None:
    """Ask the cluster DNS from inside a pod, with the pod's resolv.conf (search list,
    ndots), and print the answer. Exit 1 unless the name resolves. An IP address (either
    family) is looked up as PTR.

    Examples: netlab dns web;  netlab dns web --type AAAA;  netlab dns _http._tcp.web
    --type SRV;  netlab dns 10.96.0.10;  netlab dns web --server fd00:10:96::a
    """
    fmt = parse_output(output, DOCUMENT)
    import ipaddress as _ip

    with contextlib.suppress(ValueError):
        name, qtype = _ip.ip_address(name).reverse_pointer, "PTR"
    a = open_lab(lab).dns(name, src, qtype or None, server=server)
    if fmt.machine:
        print_document(fmt, a.to_json())
    else:
        via = " over TCP (UDP answer truncated)" if a.tcp else ""
        out.print(f"{a.query} {a.type}: {a.rcode} from {a.server}{via} in "
                  f"{a.seconds * 1000:.1f} ms", highlight=False)
        for r in a.answers:
            out.print(f"  {r.name}\t{r.ttl}\t{r.type}\t{r.data}", highlight=False)
        for r in a.additional:
            out.print(f"  (additional) {r.name}\t{r.type}\t{r.data}", highlight=False)
        if len(a.tried) > 1:
            out.print(f"  [dim]search list tried: {', '.join(a.tried)}[/dim]",
                      highlight=False)
    raise typer.Exit(0 if a.rcode == "NOERROR" and a.answers else 1)


@app.command(rich_help_panel=TRAFFIC)
def http(url: Annotated[str, typer.Argument(help="http[s]://HOST/PATH: HOST goes in the Host "
                                            "header and SNI; an IP address is connected to.")],
         src: Annotated[str, typer.Option("--from", help="external (default), internet, a "
                                          "pod or node/NAME.")] = "external",
         method: Annotated[str, typer.Option("--method", "-X")] = "GET",
         header: Annotated[list[str] | None, typer.Option("--header", "-H",
                                                          help="'Name: value'")] = None,
         output: Annotated[str, output_option(DOCUMENT)] = "table",
         ipv6: Annotated[bool, typer.Option("-6", "--ipv6", help="To the controller's IPv6 "
                                            "address (dual-stack labs).")] = False,
         lab: LabOpt = None) -> None:
    """A real HTTP(S) request through the lab's ingress controller, like curl: status,
    the pod that answered, the headers it received, the certificate's names.

    Example: netlab http http://foo.bar.com/testpath
    Example: netlab http -6 http://foo.bar.com/        (over IPv6, dual-stack labs)
    """
    fmt = parse_output(output, DOCUMENT)
    headers = {}
    for h in header or []:
        k, _, v = h.partition(":")
        headers[k.strip()] = v.strip()
    r = open_lab(lab).http(url, src, method.upper(), headers,
                           family="IPv6" if ipv6 else None)
    if fmt.machine:
        print_document(fmt, r.to_json())
    elif r.status is None:
        out.print(f"{escape(url)}: [red]no answer[/red] ({escape(r.error or '')})",
                  highlight=False)
    else:
        color = "green" if r.ok else "red"
        out.print(f"{escape(url)} via {r.address}: [{color}]{r.status} {r.reason}[/{color}]"
                  + (f", answered by {r.answered_by}" if r.answered_by else "")
                  + f" in {r.seconds * 1000:.1f} ms", highlight=False)
        if r.certificate_names:
            out.print(f"  certificate for: {', '.join(r.certificate_names)}",
                      highlight=False)
        for k in ("x-forwarded-for", "x-real-ip", "host"):
            if k in r.seen_headers:
                out.print(f"  the pod saw {k}: {r.seen_headers[k]}", highlight=False)
        if not r.answered_by:
            out.print("  " + r.body.strip()[:200], highlight=False)
    raise typer.Exit(0 if r.ok else 1)


@app.command(rich_help_panel=TRAFFIC)
def trace(src: Annotated[str, typer.Argument(help="Pod ([NS/]NAME), node/NAME, external or "
                                             "internet.")],
          dst: Annotated[str, typer.Argument(help="Pod, svc/[NS/]NAME, node/NAME, internet, "
                                             "an IP or a DNS name.")],
          port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535)] = None,
          proto: Annotated[Proto | None, typer.Option("--proto")] = None,
          pcap: Annotated[Path | None, typer.Option("--pcap", help="Write one pcap per "
                                                    "interface the packet crossed here.")
                          ] = None,
          timeout: Annotated[float, typer.Option("--timeout", min=0.1)] = 1.0,
          output: Annotated[str, output_option(DOCUMENT)] = "table", ipv6: IPv6Opt = False,
          lab: LabOpt = None) -> None:
    """Follow one packet from SRC to DST across every interface it crosses: ARP, bridges,
    routing, VXLAN encapsulation, Service DNAT, masquerade; where it died and why. With -6
    (or an IPv6 address) over IPv6, marked by its flow label, with NDP in place of ARP.

    Examples: netlab trace client svc/web;  netlab trace -6 client svc/web (dual-stack)
    """
    fmt = parse_output(output, DOCUMENT)
    r = open_lab(lab).trace(src, dst, port, proto.value if proto else None, timeout, pcap,
                            family="IPv6" if ipv6 else None)
    if fmt.machine:
        print_document(fmt, r.to_json())
        raise typer.Exit(0 if r.delivered else 1)
    addr = f"[{r.address}]" if r.port and ":" in r.address else r.address
    where = f"{addr}:{r.port}/{r.protocol}" if r.port else f"{r.address}/{r.protocol}"
    mark = f"flow label {r.flow_label}" if r.flow_label is not None else f"IP id {r.ip_id}"
    out.print(f"[bold]trace {src} -> {dst} ({escape(where)}), {mark}[/bold]", highlight=False)
    t = Table(box=None, header_style="bold")
    for c in ("#", "ms", "NAMESPACE", "IFACE", "", "PACKET", "CHANGED"):
        t.add_column(c, no_wrap=c != "PACKET" and c != "CHANGED")
    styles = {"request": "", "reply": "green", "arp": "dim", "ndp": "dim", "icmp-error": "red"}
    for h in r.hops:
        arrow = "->" if h.direction == "out" else "<-"
        style = styles.get(h.kind, "")
        summary = escape(h.summary)  # [fd00::1]:80 would read as markup
        t.add_row(str(h.index), f"{h.ms:.3f}", h.netns, h.iface, arrow,
                  f"[{style}]{summary}[/{style}]" if style else summary,
                  escape("; ".join(h.changes)))
    out.print(t)
    for v in r.kernel_verdicts:
        out.print(f"  nft: {escape(v)}", highlight=False, soft_wrap=True)
    color = "green" if r.delivered and r.reply else "red"
    out.print(f"[{color}]{escape(r.verdict)}[/{color}]", highlight=False, soft_wrap=True)
    for pth in r.pcaps:
        out.print(f"  wrote {pth}", highlight=False)
    raise typer.Exit(0 if r.delivered else 1)


@app.command(rich_help_panel=TRAFFIC)
def capture(target: Annotated[str, typer.Argument(help="POD[:IFACE], node/NAME[:IFACE] (eth0, "
                                                  "cni0, flannel.1, ...) or underlay.")],
            bpf: Annotated[str | None, typer.Option("--filter", help="A BPF filter, like "
                                                    "tcpdump's (e.g. 'udp port 8472').")
                           ] = None,
            write: Annotated[Path | None, typer.Option("-w", "--write", help="Write a pcap "
                                                       "instead of printing.")] = None,
            count: Annotated[int | None, typer.Option("--count", "-c", min=1)] = None,
            seconds: Annotated[float | None, typer.Option("--seconds", min=0.1,
                                                          help="Stop after this long.")] = None,
            lab: LabOpt = None) -> None:
    """Capture live on a pod's or node's interface, or on the underlay switch: one line per
    packet (or a pcap with -w) until --count, --seconds or Ctrl-C."""
    lab_ = open_lab(lab)
    seen: list = []
    done = threading.Event()

    def show(c) -> None:
        if count and len(seen) >= count:
            return
        seen.append(c)
        if write is None:
            arrow = "->" if c.outgoing else "<-"
            sys.stdout.write(f"{time.strftime('%H:%M:%S', time.localtime(c.time))}."
                             f"{int(c.time % 1 * 1e6):06d} {c.label} {arrow} "
                             f"{c.packet.summary()}\n")
            sys.stdout.flush()
        if count and len(seen) >= count:
            done.set()

    cap = lab_.capture(target, bpf=bpf)
    cap.on_packet = show
    t0 = time.monotonic()
    with cap:
        try:
            while not done.is_set() and (seconds is None or
                                         time.monotonic() - t0 < seconds):
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
    if write is not None:
        cap.write_pcap(write, [c for c in (seen[:count] if count else seen) if c])
        err.print(f"wrote {min(len(seen), count or len(seen))} packets to {write}")
