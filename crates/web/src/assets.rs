//! The embedded assets and the HTML shell of every page.

use std::sync::OnceLock;

/// One embedded file.
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
}

const JS_TYPE: &str = "text/javascript; charset=utf-8";

macro_rules! assets {
    ($($name:literal => $ty:expr),* $(,)?) => {
        /// Every file below `static/<version>/`, by name.
        const ASSETS: &[(&str, Asset)] = &[
            $(($name, Asset { body: include_bytes!(concat!("../assets/", $name)), content_type: $ty }),)*
        ];
    };
}

assets! {
    "app.css" => "text/css; charset=utf-8",
    "js/app.js" => JS_TYPE,
    "js/api.js" => JS_TYPE,
    "js/dom.js" => JS_TYPE,
    "js/format.js" => JS_TYPE,
    "js/chart.js" => JS_TYPE,
    "js/graph.js" => JS_TYPE,
    "js/targets.js" => JS_TYPE,
    "js/rules.js" => JS_TYPE,
    "js/status.js" => JS_TYPE,
    "js/dashboards.js" => JS_TYPE,
    "js/grafana.js" => JS_TYPE,
    "js/panels.js" => JS_TYPE,
    "vendor/uPlot.iife.min.js" => JS_TYPE,
    "vendor/uPlot.min.css" => "text/css; charset=utf-8",
    "vendor/uPlot.LICENSE" => "text/plain; charset=utf-8",
}

const SHELL: &str = include_str!("../assets/index.html");

pub fn get(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
}

/// A hash of every asset (FNV-1a, 64 bits, hex): the `static/<version>/` path segment.
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (name, a) in ASSETS {
            for b in name.as_bytes().iter().chain(a.body) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    })
}

/// The HTML of `page`: the shell with the page name and the asset version filled in.
pub fn page(page: &str) -> String {
    SHELL
        .replace("{{page}}", page)
        .replace("{{version}}", version())
}

#[cfg(test)]
pub(crate) fn all() -> &'static [(&'static str, Asset)] {
    ASSETS
}
