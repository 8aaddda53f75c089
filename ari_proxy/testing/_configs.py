"""Asterisk configuration files for one sandbox instance.

Each instance gets its own configuration directory inside the root, with its own run, database,
spool, log and cache directories, HTTP port, SIP port, RTP range and entity ID, so several
instances run side by side from one root.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OUTBOUND_CLIENT_ID", "InstanceSpec", "render_configs", "render_outbound"]


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """What makes one Asterisk instance distinct from the others in the same root."""

    name: str
    http_port: int
    sip_port: int
    rtp_start: int
    rtp_end: int
    entity_id: str
    username: str = "ari"
    password: str = "ari-sandbox-secret"
    #: Application that `exten => stasis` enters (the Go vectors' test bed uses `test`).
    default_app: str = "test"
    #: Where Asterisk dials its outbound ARI WebSocket (`ws://host:port/path`); empty: none,
    #: and `ari.conf` and `websocket_client.conf` stay as for inbound clients.
    outbound_url: str = ""
    #: Applications the outbound connection serves, comma-separated (no inbound client may
    #: register them while it is configured).
    outbound_apps: str = ""
    #: The credentials Asterisk presents to the outbound server (HTTP Basic).
    outbound_username: str = "asterisk"
    outbound_password: str = ""
    #: Milliseconds between Asterisk's attempts to (re)connect.
    outbound_reconnect_ms: int = 200
    #: Where ARI also listens for HTTPS/WSS (0: no TLS listener, `http.conf` as for plain HTTP).
    https_port: int = 0
    #: The host's PEM files of the server certificate and its key, copied into the instance's
    #: `tls_dir` at start (the instance reads them as its own user).
    tls_cert_source: str = ""
    tls_key_source: str = ""

    @property
    def tls_dir(self) -> str:
        return f"{self.etc_dir}/tls"

    @property
    def etc_dir(self) -> str:
        return f"/etc/asterisk-{self.name}"

    @property
    def run_dir(self) -> str:
        return f"/run/asterisk-{self.name}"

    @property
    def lib_dir(self) -> str:
        return f"/var/lib/asterisk-{self.name}"

    @property
    def spool_dir(self) -> str:
        return f"/var/spool/asterisk-{self.name}"

    @property
    def log_dir(self) -> str:
        return f"/var/log/asterisk-{self.name}"

    @property
    def cache_dir(self) -> str:
        return f"/var/cache/asterisk-{self.name}"

    @property
    def conf_path(self) -> str:
        return f"{self.etc_dir}/asterisk.conf"

    @property
    def own_dirs(self) -> tuple[str, ...]:
        """Directories (inside the root) that belong to this instance alone."""
        return (
            self.etc_dir,
            self.run_dir,
            self.lib_dir,
            f"{self.lib_dir}/keys",
            self.spool_dir,
            f"{self.spool_dir}/recording",
            f"{self.spool_dir}/tmp",
            f"{self.spool_dir}/outgoing",
            f"{self.spool_dir}/voicemail",
            self.log_dir,
            self.cache_dir,
        )


# Modules that open fixed ports, need hardware or external services, or are simply not needed.
# Leaving them out keeps start-up fast and lets several instances share one loopback interface.
_NOLOAD = (
    "chan_iax2.so",
    "pbx_dundi.so",
    "chan_unistim.so",
    "chan_console.so",
    "chan_motif.so",
    "res_xmpp.so",
    "res_snmp.so",
    "res_hep.so",
    "res_hep_pjsip.so",
    "res_hep_rtcp.so",
    "res_calendar.so",
    "res_calendar_caldav.so",
    "res_calendar_ews.so",
    "res_calendar_exchange.so",
    "res_calendar_icalendar.so",
    "res_config_ldap.so",
    "res_config_pgsql.so",
    "res_config_odbc.so",
    "res_config_curl.so",
    "res_odbc.so",
    "res_odbc_transaction.so",
    "func_odbc.so",
    "cdr_adaptive_odbc.so",
    "cdr_odbc.so",
    "cdr_pgsql.so",
    "cdr_radius.so",
    "cdr_tds.so",
    "cdr_manager.so",
    "cel_odbc.so",
    "cel_pgsql.so",
    "cel_radius.so",
    "cel_tds.so",
    "cel_manager.so",
    "app_voicemail_odbc.so",
    "res_phoneprov.so",
    "res_pjsip_phoneprov_provider.so",
    "pbx_lua.so",
    "pbx_ael.so",
    "pbx_realtime.so",
    "res_smdi.so",
    "res_statsd.so",
    "res_stun_monitor.so",
    "res_prometheus.so",
    "res_fax_spandsp.so",
    "res_aeap.so",
    "res_speech_aeap.so",
    "res_pjsip_outbound_registration.so",
    "res_pjsip_stir_shaken.so",
    "res_stir_shaken.so",
    "app_jack.so",
    "app_festival.so",
    "res_resolver_unbound.so",
    "cdr_csv.so",
    "cdr_custom.so",
    "cdr_sqlite3_custom.so",
    "cel_custom.so",
    "cel_sqlite3_custom.so",
    "res_adsi.so",
    "app_adsiprog.so",
    "app_getcpeid.so",
)


OUTBOUND_CLIENT_ID = "ari-proxy"
"""The `websocket_client.conf` connection (and `ari.conf` outbound entry) the sandbox writes."""


def render_outbound(spec: InstanceSpec) -> dict[str, str]:
    """The outbound persistent WebSocket: Asterisk dials `spec.outbound_url` (Asterisk 22.5+).

    The `ari.conf` section is appended to the inbound one (the ARI user stays, for HTTP and
    as the connection's `local_ari_user`); `websocket_client.conf` holds the connection.
    """
    s = spec
    scheme = s.outbound_url.partition(":")[0]
    return {
        "ari.conf": f"""
[{OUTBOUND_CLIENT_ID}]
type = outbound_websocket
websocket_client_id = {OUTBOUND_CLIENT_ID}
apps = {s.outbound_apps}
local_ari_user = {s.username}
subscribe_all = no
""",
        "websocket_client.conf": f"""\
[{OUTBOUND_CLIENT_ID}]
type = websocket_client
connection_type = persistent
uri = {s.outbound_url}
protocols = ari
username = {s.outbound_username}
password = {s.outbound_password}
connection_timeout = 500
reconnect_interval = {s.outbound_reconnect_ms}
reconnect_attempts = 4
tls_enabled = {"yes" if scheme == "wss" else "no"}
{"verify_server_cert = no" + chr(10) + "verify_server_hostname = no" if scheme == "wss" else ""}
""",
    }


def render_configs(spec: InstanceSpec, moddir: str) -> dict[str, str]:
    """Return file name → content for the files that differ from Debian's defaults."""
    files = _render_inbound(spec, moddir)
    if spec.outbound_url:
        outbound = render_outbound(spec)
        files["ari.conf"] += outbound["ari.conf"]
        files["websocket_client.conf"] = outbound["websocket_client.conf"]
    return files


def _render_tls(spec: InstanceSpec) -> str:
    """`http.conf`'s HTTPS listener (keys as in Asterisk's http.conf.sample), or nothing."""
    if not spec.https_port:
        return ""
    return (
        "tlsenable = yes\n"
        f"tlsbindaddr = 127.0.0.1:{spec.https_port}\n"
        f"tlscertfile = {spec.tls_dir}/server.pem\n"
        f"tlsprivatekey = {spec.tls_dir}/server-key.pem\n"
    )


def _render_inbound(spec: InstanceSpec, moddir: str) -> dict[str, str]:
    s = spec
    noload = "\n".join(f"noload => {m}" for m in _NOLOAD)
    return {
        "asterisk.conf": f"""\
[directories]
astcachedir => {s.cache_dir}
astetcdir => {s.etc_dir}
astmoddir => {moddir}
astvarlibdir => /var/lib/asterisk
astdbdir => {s.lib_dir}
astkeydir => {s.lib_dir}
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {s.spool_dir}
astrundir => {s.run_dir}
astlogdir => {s.log_dir}
astsbindir => /usr/sbin

[options]
entityid = {s.entity_id}
documentation_language = en_US
maxfiles = 8192
""",
        "modules.conf": f"""\
[modules]
autoload = yes
{noload}
""",
        "http.conf": f"""\
[general]
enabled = yes
bindaddr = 127.0.0.1
bindport = {s.http_port}
{_render_tls(s)}""",
        "ari.conf": f"""\
[general]
enabled = yes
pretty = no
allowed_origins = *

[{s.username}]
type = user
read_only = no
password = {s.password}
""",
        "manager.conf": "[general]\nenabled = no\n",
        "cdr.conf": "[general]\nenable = no\n",
        "cel.conf": "[general]\nenable = no\n",
        "logger.conf": """\
[general]
[logfiles]
console => notice,warning,error
messages.log => notice,warning,error
""",
        "rtp.conf": f"[general]\nrtpstart = {s.rtp_start}\nrtpend = {s.rtp_end}\n",
        "musiconhold.conf": """\
[general]
[default]
mode = files
directory = /usr/share/asterisk/sounds/en_US_f_Allison/digits
sort = alpha
""",
        "pjsip.conf": f"""\
[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:{s.sip_port}

[sipp]
type = endpoint
context = default
disallow = all
allow = ulaw,alaw,gsm
direct_media = no
rtp_symmetric = yes
aors = sipp

[sipp]
type = aor
max_contacts = 1

[sipp]
type = identify
endpoint = sipp
match = 127.0.0.1
""",
        "extensions.conf": f"""\
[general]
static = yes
writeprotect = yes

[globals]
STASIS_APP = {s.default_app}

[default]
; "stasis-<app>" enters the Stasis application named after the dash, so tests pick
; their own application per test without a dialplan reload.
exten => _stasis-.,1,NoOp(entering ${{EXTEN:7}})
 same => n,Stasis(${{EXTEN:7}})
 same => n,Hangup()

exten => stasis,1,Stasis(${{STASIS_APP}})
 same => n,Hangup()

exten => wait,1,Answer()
 same => n,Wait(3600)
 same => n,Hangup()

exten => echo,1,Answer()
 same => n,Echo()
 same => n,Hangup()

exten => ring,1,Ringing()
 same => n,Wait(3600)
 same => n,Hangup()

exten => busy,1,Busy(5)
exten => congestion,1,Congestion(5)

exten => dtmf,1,Answer()
 same => n,Wait(1)
 same => n,SendDTMF(1234#,200)
 same => n,Wait(3600)
 same => n,Hangup()

exten => playback,1,Answer()
 same => n,Playback(hello-world)
 same => n,Wait(3600)
 same => n,Hangup()

exten => h,1,NoOp(hangup)
""",
    }
