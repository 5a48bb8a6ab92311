"""Real packets: ping, probe, dns, http, trace, capture."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from netlab.cli.common import TRAFFIC, LabOpt, Proto, app, err, open_lab, out, output_option
from netlab.cli.printers import DOCUMENT, parse_output, print_document
from netlab.errors import InputError
from netlab.expectations import HTTP_TOKEN
from netlab.lab import HttpResult

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


# what a proxy adds on the way (shown without -v; -v shows every header the backend saw)
FORWARDING_HEADERS = ("forwarded", "via", "x-forwarded-for", "x-forwarded-host",
                      "x-forwarded-port", "x-forwarded-proto", "x-forwarded-scheme",
                      "x-real-ip")


HEADER_FORM = ("'Name: value' (a name of letters, digits and !#$%&'*+-.^_`|~, a colon, "
               "the value; 'Name;' sends it empty, as curl)")
RESOLVE_FORM = ("HOST:PORT:ADDRESS, like curl's (shop.example.com:443:172.18.0.200; an IPv6 "
                "ADDRESS may be in brackets)")


def parse_header(text: str) -> tuple[str, str] | None:
    """curl's -H forms: "Name: value", or "Name;" for an empty value. None if malformed
    (see HEADER_FORM)."""
    name, sep, value = text.partition(":")
    if not sep and text.rstrip().endswith(";"):
        name, value = text.rstrip()[:-1], ""
    elif not sep:
        return None
    name, value = name.strip(), value.strip()
    if not HTTP_TOKEN.fullmatch(name) or "\r" in value or "\n" in value:
        return None
    return name, value


def parse_resolve(text: str) -> tuple[str, str] | None:
    """curl's --resolve HOST:PORT:ADDRESS as ("host:port", address), the host in lower case,
    IPv6 without brackets (the key Lab.http looks a URL's host and port up by). None if
    malformed (see RESOLVE_FORM)."""
    m = re.fullmatch(r"(\[[^\]]+\]|[^:\[\]]+):(\d{1,5}):(.+)", text.strip())
    if m is None or not 1 <= int(m.group(2)) <= 65535:
        return None
    try:
        address = ipaddress.ip_address(m.group(3).strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    return f"{m.group(1).strip('[]').lower()}:{int(m.group(2))}", str(address)


def _pairs_option(values: list[str], parse: Callable[[str], tuple[str, str] | None],
                  option: str, form: str) -> dict[str, str]:
    """A repeatable KEY/VALUE option (-H, --resolve) as a mapping, the later winning; exit 2
    naming the option and its form for a malformed one."""
    out: dict[str, str] = {}
    for text in values:
        parsed = parse(text)
        if parsed is None:
            raise InputError(f"{option} {text!r}: the form is {form}")
        out[parsed[0]] = parsed[1]
    return out


def _data_option(value: str) -> bytes:
    """-d TEXT, -d @FILE (its bytes as they are, as curl --data-binary), -d @- (stdin)."""
    if not value.startswith("@"):
        return value.encode()
    if value == "@-":
        return sys.stdin.buffer.read()
    try:
        return Path(value[1:]).read_bytes()
    except OSError as e:
        raise InputError(f"-d/--data {value}: cannot read {value[1:]}: "
                         f"{e.strerror or e}") from e


def _to_option(value: str) -> str:
    kind, _, ref = value.partition("/")
    if value == "ingress" or (kind == "gateway" and ref and all(ref.split("/"))
                              and ref.count("/") <= 1):
        return value
    raise InputError(f"--to {value!r}: the form is ingress or gateway/[NAMESPACE/]NAME")


def _print_exchange(r: HttpResult, src: str) -> None:
    """curl -v's view, on stderr (stdout stays the answer, -o json stays parseable)."""
    host = f"[{r.address}]" if ":" in r.address else r.address
    lines = [f"* from {src} to {host}", f"> {r.request_line}",
             *(f"> {k}: {v}" for k, v in r.sent_headers.items()), ">"]
    if r.status is None:
        lines.append(f"* {r.error}")
    else:
        if r.certificate_names:
            lines.insert(1, "* certificate for: " + ", ".join(r.certificate_names)
                         + (" (verified)" if r.verified else " (not verified)"))
        lines += [f"< {r.version or 'HTTP/1.1'} {r.status} {r.reason}",
                  *(f"< {k}: {v}" for k, v in r.headers.items()), "<"]
    for line in lines:
        err.print(escape(line), highlight=False, soft_wrap=True)


def _print_answer(r: HttpResult, url: str, verbose: bool) -> None:
    if r.status is None:
        out.print(f"{escape(url)}: [red]no answer[/red] ({escape(r.error or '')})",
                  highlight=False)
        return
    color = "green" if r.ok else "red"
    out.print(f"{escape(url)} via {escape(r.address)}: [{color}]{r.status} "
              f"{escape(r.reason)}[/{color}]"
              + (f", answered by {escape(r.answered_by)}" if r.answered_by else "")
              + f" in {r.seconds * 1000:.1f} ms", highlight=False)
    if r.certificate_names:
        out.print(f"  certificate for: {escape(', '.join(r.certificate_names))}"
                  + (" (verified)" if r.verified else ""), highlight=False)
    if r.seen_method:
        out.print(f"  the backend received: {escape(r.seen_method)} "
                  f"{escape(r.seen_path or '')}, Host {escape(r.seen_host or '')}",
                  highlight=False)
    shown = r.seen_headers if verbose else {k: v for k, v in r.seen_headers.items()
                                            if k in FORWARDING_HEADERS}
    for k, v in shown.items():
        out.print(f"    {escape(k)}: {escape(v)}", highlight=False, soft_wrap=True)
    if not r.answered_by:
        out.print("  " + escape(r.body.strip()[:200]), highlight=False)


@app.command(rich_help_panel=TRAFFIC)
def http(url: Annotated[str, typer.Argument(help="http[s]://HOST[:PORT]/PATH[?QUERY]: HOST goes "
                                            "in the Host header and SNI; an IP address is "
                                            "connected to (unless --to or --resolve).")],
         src: Annotated[str, typer.Option("--from", help="external (default), internet, a "
                                          "pod or node/NAME.")] = "external",
         method: Annotated[str | None, typer.Option(
             "--method", "-X", help="GET, or POST with -d (as curl).",
             show_default=False)] = None,
         header: Annotated[list[str] | None, typer.Option(
             "--header", "-H", help="'Name: value' to send (repeatable); it replaces a "
             "Host, User-Agent or Accept netlab would send.", show_default=False)] = None,
         data: Annotated[str | None, typer.Option(
             "--data", "-d", help="A body: TEXT, @FILE (sent as it is) or @- (stdin); "
             "Content-Type application/x-www-form-urlencoded unless -H sets one.",
             show_default=False)] = None,
         resolve: Annotated[list[str] | None, typer.Option(
             "--resolve", help="HOST:PORT:ADDRESS: connect to ADDRESS for that host and port, "
             "as curl (repeatable).", show_default=False)] = None,
         cacert: Annotated[Path | None, typer.Option(
             "--cacert", help="Verify the server's certificate against this CA file (PEM), "
             "and that it is for the URL's host.", exists=True, dir_okay=False,
             show_default=False)] = None,
         insecure: Annotated[bool, typer.Option(
             "--insecure", "-k", help="Do not verify the certificate (the default without "
             "--cacert; wins over it, as curl).")] = False,
         to: Annotated[str | None, typer.Option(
             "--to", help="The proxy to send to: ingress or gateway/[NS/]NAME (default: the "
             "ingress controller); the URL's host goes in Host and SNI only.",
             show_default=False)] = None,
         verbose: Annotated[bool, typer.Option(
             "--verbose", "-v", help="Print the request and response headers (on stderr, "
             "like curl -v) and every header the backend received.")] = False,
         output: Annotated[str, output_option(DOCUMENT)] = "table",
         ipv6: Annotated[bool, typer.Option("-6", "--ipv6", help="To the proxy's IPv6 "
                                            "address (dual-stack labs).")] = False,
         lab: LabOpt = None) -> None:
    """A real HTTP(S) request, like curl, through the lab's ingress controller or a
    Gateway: the status, the pod that answered and what that backend received (method,
    path and query, Host, the headers a proxy added), the certificate's names. Exit 0 for
    a 2xx/3xx answer, 1 otherwise, 2 for bad options.

    The pods' built-in responder echoes what reached it, as the Gateway API
    conformance echo server does: a routing rule is checked from the answer alone.

    [bold]Examples[/bold]

    Through the ingress controller, from outside the cluster:
      netlab http http://foo.bar.com/testpath

    A canary chosen by a header (the answering pod tells which backend won):
      netlab http -H 'X-Canary: always' http://shop.example/

    A POST (as curl -d; -d @FILE sends a file, -X chooses another method):
      netlab http -d 'name=ada' http://shop.example/users
      netlab http -X PUT -H 'Content-Type: application/json' -d @u.json \\
        http://shop.example/u/1

    Pinning the address a host name goes to (curl's --resolve):
      netlab http --resolve shop.example:80:172.18.0.201 http://shop.example/

    HTTPS, the certificate verified against the lab's CA and the host name:
      netlab http --cacert ca.pem https://shop.example/

    Through a Gateway, with curl -v's view of the exchange:
      netlab http --to gateway/infra/public -v 'http://shop.example/?q=1'

    Over IPv6 (dual-stack labs):
      netlab http -6 http://foo.bar.com/
    """
    fmt = parse_output(output, DOCUMENT)
    headers = _pairs_option(header or [], parse_header, "-H/--header", HEADER_FORM)
    pins = _pairs_option(resolve or [], parse_resolve, "--resolve", RESOLVE_FORM)
    target = _to_option(to) if to is not None else None
    body = _data_option(data) if data is not None else None
    if body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # curl -d's
    verb = (method or ("POST" if body is not None else "GET")).upper()
    lab_ = open_lab(lab)
    r = lab_.http(url, src, verb, headers, family="IPv6" if ipv6 else None,
                  data=body, to=target, resolve=pins or None,
                  cacert=str(cacert) if cacert else None, insecure=insecure)
    if verbose:
        _print_exchange(r, src)
    if fmt.machine:
        print_document(fmt, r.to_json())
    else:
        _print_answer(r, url, verbose)
        if not r.ok and not pins:  # the controller's words on what serves this URL
            for h in lab_.http_hints(url, target):
                out.print(f"  [yellow]hint:[/yellow] {escape(h)}", highlight=False)
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
