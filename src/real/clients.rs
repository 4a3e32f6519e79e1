//! The ready-to-paste command lines of real clients (dig, kdig, curl, openssl, the agent)
//! for what `steerlab serve` runs; `serve.json` carries them, and the tests run them.

use std::net::Ipv4Addr;

use super::info::{ClientLine, FILE, ServeInfo};

/// The real clients' lines for what `info` serves: each says what it shows. `gateway`
/// is the PoP the site resolves the gateway name to (openssl's target).
pub fn lines(info: &ServeInfo, gateway: Option<Ipv4Addr>) -> Vec<ClientLine> {
    let s = |x: &str| x.to_string();
    let public = info.ca.public.display().to_string();
    let tenant = info.ca.tenant.display().to_string();
    let mut lines = Vec::new();
    let silent = |yes: bool| {
        if yes {
            " (silent: partitioned at 0s)"
        } else {
            ""
        }
    };
    let ldns_silent = info.hosts.iter().any(|h| h.kind == "ldns" && h.silent);
    lines.push(ClientLine::new(
        "dig",
        &format!(
            "the local resolver answers for its own egress{}",
            silent(ldns_silent)
        ),
        vec![
            s("dig"),
            format!("@{}", info.ldns.ip()),
            s("-p"),
            info.ldns.port().to_string(),
            info.gateway_name.clone(),
            s("A"),
        ],
        false,
    ));
    lines.push(ClientLine::new(
        "kdig",
        &format!(
            "DNS over HTTPS (RFC 8484), verified with the public CA{}",
            silent(info.doh.silent)
        ),
        vec![
            s("kdig"),
            format!("@{}", info.doh.addr.ip()),
            s("-p"),
            info.doh.addr.port().to_string(),
            s("+https"),
            format!("+tls-ca={public}"),
            format!("+tls-hostname={}", info.doh.name),
            info.gateway_name.clone(),
            s("A"),
        ],
        false,
    ));
    let pops_url = format!(
        "https://{}{}/v1/pops?tenant={}",
        info.gslb.name,
        port_suffix(info.gslb.addr.port(), 443),
        info.tenant
    );
    let doh_url = format!(
        "https://{}{}/dns-query",
        info.doh.addr.ip(),
        port_suffix(info.doh.addr.port(), 443)
    );
    lines.push(ClientLine::new(
        "curl",
        &format!(
            "curl resolves the GSLB name by DoH, then asks it for PoPs{}",
            silent(info.doh.silent || info.gslb.silent)
        ),
        vec![
            s("curl"),
            s("-sS"),
            s("--cacert"),
            public.clone(),
            s("--doh-url"),
            doh_url,
            pops_url.clone(),
        ],
        false,
    ));
    lines.push(ClientLine::new(
        "curl",
        &format!("the GSLB API's ranked PoP list{}", silent(info.gslb.silent)),
        vec![
            s("curl"),
            s("-sS"),
            s("--cacert"),
            public.clone(),
            s("--resolve"),
            format!(
                "{}:{}:{}",
                info.gslb.name,
                info.gslb.addr.port(),
                info.gslb.addr.ip()
            ),
            pops_url.clone(),
        ],
        false,
    ));
    if let Some(proxy) = info.proxy {
        let proxy_silent = info.hosts.iter().any(|h| h.kind == "proxy" && h.silent);
        let target = info
            .hosts
            .iter()
            .find(|h| h.kind == "origin" && !h.silent)
            .and_then(|h| h.names.first())
            .map(|name| format!("https://{name}/"))
            .unwrap_or(pops_url);
        lines.push(ClientLine::new(
            "curl",
            &format!(
                "HTTPS through the site's CONNECT proxy{}",
                silent(proxy_silent)
            ),
            vec![
                s("curl"),
                s("-sS"),
                s("--cacert"),
                public.clone(),
                s("--proxy"),
                format!("http://{proxy}"),
                target,
            ],
            false,
        ));
    }
    if let Some(cp) = &info.control_plane {
        let api = info.tenant_api_name();
        lines.push(ClientLine::new(
            "curl",
            &format!(
                "the tenant's REST API: devices and users{}",
                silent(cp.silent)
            ),
            vec![
                s("curl"),
                s("-sS"),
                s("--cacert"),
                public.clone(),
                s("--resolve"),
                format!("{api}:{}:{}", cp.addr.port(), cp.addr.ip()),
                s("-H"),
                format!(
                    "{}: {}",
                    sim_tenant::TOKEN_HEADER,
                    crate::world::tenant::API_TOKEN
                ),
                format!(
                    "https://{api}{}/api/v2/clients",
                    port_suffix(cp.addr.port(), 443)
                ),
            ],
            false,
        ));
    }
    let gateway = gateway.and_then(|ip| info.host_at(ip));
    if let Some(gw) = gateway {
        lines.push(ClientLine::new(
            "openssl",
            &format!(
                "the {} gateway's TLS, verified with the tenant CA only{}",
                gw.label,
                silent(gw.silent)
            ),
            vec![
                s("openssl"),
                s("s_client"),
                s("-connect"),
                format!("{}:{}", gw.ip, info.gateway_port),
                s("-servername"),
                info.gateway_name.clone(),
                s("-CAfile"),
                tenant,
            ],
            true,
        ));
    }
    lines.push(ClientLine::new(
        "steerlab",
        "the real agent against these servers, with its log",
        vec![
            s("steerlab"),
            s("agent"),
            s("--connect"),
            info.ca.public.with_file_name(FILE).display().to_string(),
        ],
        false,
    ));
    lines
}

/// `:port` unless it is the scheme's `default`.
pub(crate) fn port_suffix(port: u16, default: u16) -> String {
    if port == default {
        String::new()
    } else {
        format!(":{port}")
    }
}
