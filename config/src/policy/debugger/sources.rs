//! Where a debuggee's command line and environment name its debugger's
//! port: debugpy, pydevd, JDWP (Java), the Node inspector. Each reader
//! hands every port it finds to `add`; malformed values are skipped.
//!
//! debugpy 1.8: the launcher starts the debuggee as `python [-X
//! frozen_modules=off] …/debugpy --connect HOST:PORT [--configure-qt …]
//! [--adapter-access-token …] program…`, and `debugpy.listen()`/`--listen
//! [HOST:]PORT` has the debuggee spawn the adapter. `DEBUGPY_EXTRA_ARGV`
//! adds switches from the environment. (`DEBUGPY_ADAPTER_ENDPOINTS` is a
//! file the *adapter* writes its ports to for whoever started it; the
//! debuggee never reads it, so it is no source here.)

use super::argv::{basename, package_path, python_target, words, PythonTarget};

/// Node's default inspector port.
pub const NODE_INSPECT_PORT: u16 = 9229;

/// A port number: 1 to 65535, in decimal digits only.
pub fn parse_port(text: &[u8]) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = text
        .iter()
        .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'));
    u16::try_from(value).ok().filter(|port| *port != 0)
}

/// The port of `[HOST:]PORT`, `HOST:PORT` or `[V6]:PORT`.
pub fn host_port(text: &[u8]) -> Option<u16> {
    match text.iter().rposition(|b| *b == b':') {
        Some(colon) => parse_port(&text[colon + 1..]),
        None => parse_port(text),
    }
}

/// debugpy's `--connect`/`--listen`, on the debugpy command line that
/// follows the interpreter (`…/debugpy`, `-m debugpy`, the `debugpy`
/// console script), and in `DEBUGPY_EXTRA_ARGV`.
pub fn debugpy(argv: &[&[u8]], extra_argv: Option<&[u8]>, add: &mut impl FnMut(u16)) {
    let cli = match python_target(argv.get(1..).unwrap_or_default()) {
        Some(PythonTarget::Module { module, rest }) if module == b"debugpy" => Some(rest),
        Some(PythonTarget::Script { path, rest }) if basename(package_path(path)) == b"debugpy" => {
            Some(rest)
        }
        _ => None,
    };
    if let Some(cli) = cli {
        debugpy_switches(cli.iter().copied(), add);
    }
    if let Some(extra) = extra_argv {
        debugpy_switches(words(extra), add);
    }
}

/// debugpy switches that take a value (besides `--connect`/`--listen`).
const DEBUGPY_WITH_VALUE: &[&[u8]] = &[
    b"--log-to",
    b"--adapter-access-token",
    b"--parent-session-pid",
];

/// Reads debugpy's switches up to its target (a file, `-m`, `-c`, `--pid`):
/// what follows the target is the program's own command line.
fn debugpy_switches<'a>(args: impl Iterator<Item = &'a [u8]>, add: &mut impl FnMut(u16)) {
    let mut args = args;
    while let Some(arg) = args.next() {
        if arg == b"--connect" || arg == b"--listen" {
            if let Some(port) = args.next().and_then(host_port) {
                add(port);
            }
        } else if let Some(value) = arg
            .strip_prefix(b"--connect=")
            .or_else(|| arg.strip_prefix(b"--listen="))
        {
            if let Some(port) = host_port(value) {
                add(port);
            }
        } else if arg == b"-m" || arg == b"-c" || arg == b"--pid" || !arg.starts_with(b"-") {
            return;
        } else if arg.starts_with(b"--configure-") || DEBUGPY_WITH_VALUE.contains(&arg) {
            args.next();
        }
    }
}

/// pydevd's `--client HOST --port N` (how pydevd starts a debugged
/// subprocess), and the `pydevd.settrace(host=…, port=N, …)` it puts in a
/// subprocess's `-c` code.
pub fn pydevd(argv: &[&[u8]], add: &mut impl FnMut(u16)) {
    let args = argv.get(1..).unwrap_or_default();
    let has_client = args.windows(2).any(|pair| pair[0] == b"--client");
    if has_client {
        for pair in args.windows(2) {
            if pair[0] == b"--port" {
                if let Some(port) = parse_port(pair[1]) {
                    add(port);
                }
            }
        }
    }
    if let Some(PythonTarget::Code { code }) = python_target(args) {
        if let Some(port) = settrace_port(code) {
            add(port);
        }
    }
}

/// `N` in `pydevd.settrace(… port=N …)`.
fn settrace_port(code: &[u8]) -> Option<u16> {
    let call = find(code, b"pydevd.settrace(")?;
    let args = &code[call..];
    let args = &args[..find(args, b")").unwrap_or(args.len())];
    let value = &args[find(args, b"port=")?..];
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    parse_port(&value[..digits])
}

/// The index just after `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| at + needle.len())
}

/// JDWP: `-agentlib:jdwp=…,address=[HOST:]PORT,…` or `-Xrunjdwp:…`, in
/// `args` (the command line, or the words of `JAVA_TOOL_OPTIONS`...).
pub fn jdwp<'a>(args: impl Iterator<Item = &'a [u8]>, add: &mut impl FnMut(u16)) {
    for arg in args {
        let Some(options) = arg
            .strip_prefix(b"-agentlib:jdwp=")
            .or_else(|| arg.strip_prefix(b"-Xrunjdwp:"))
        else {
            continue;
        };
        for option in options.split(|b| *b == b',') {
            if let Some(port) = option.strip_prefix(b"address=").and_then(host_port) {
                add(port);
            }
        }
    }
}

/// Node's inspector flags, in `args` (the command line, or the words of
/// `NODE_OPTIONS`): `--inspect`, `--inspect-brk`, `--inspect-wait` (port
/// 9229, or `=[HOST:]PORT`; `=HOST` keeps 9229) and `--inspect-port=PORT`
/// (also as two arguments).
pub fn node<'a>(args: impl Iterator<Item = &'a [u8]>, add: &mut impl FnMut(u16)) {
    const INSPECT: &[&[u8]] = &[b"--inspect", b"--inspect-brk", b"--inspect-wait"];
    const PORT: &[&[u8]] = &[b"--inspect-port", b"--debug-port"];
    let mut args = args;
    while let Some(arg) = args.next() {
        let (flag, value) = match arg.iter().position(|b| *b == b'=') {
            Some(eq) => (&arg[..eq], Some(&arg[eq + 1..])),
            None => (arg, None),
        };
        if INSPECT.contains(&flag) {
            match value {
                None => add(NODE_INSPECT_PORT),
                Some(value) => {
                    let has_port = value.contains(&b':') || value.iter().all(u8::is_ascii_digit);
                    match host_port(value) {
                        Some(port) => add(port),
                        None if !has_port => add(NODE_INSPECT_PORT),
                        None => {}
                    }
                }
            }
        } else if PORT.contains(&flag) {
            if let Some(port) = value.or_else(|| args.next()).and_then(host_port) {
                add(port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<&[u8]> {
        words(line.as_bytes()).collect()
    }

    fn collect(read: impl FnOnce(&mut dyn FnMut(u16))) -> Vec<u16> {
        let mut ports = Vec::new();
        read(&mut |port| ports.push(port));
        ports
    }

    #[test]
    fn ports() {
        let rows: &[(&str, Option<u16>, Option<u16>)] = &[
            ("5678", Some(5678), Some(5678)),
            ("1", Some(1), Some(1)),
            ("65535", Some(65535), Some(65535)),
            ("65536", None, None),
            ("99999", None, None),
            ("123456", None, None),
            ("0", None, None),
            ("", None, None),
            ("-1", None, None),
            ("+5", None, None),
            (" 5", None, None),
            ("5x", None, None),
            ("127.0.0.1:5678", None, Some(5678)),
            ("localhost:80", None, Some(80)),
            ("*:5005", None, Some(5005)),
            ("[::1]:9229", None, Some(9229)),
            ("host:", None, None),
            ("host:port", None, None),
            ("127.0.0.1", None, None),
            (":", None, None),
        ];
        for (text, port, with_host) in rows {
            assert_eq!(parse_port(text.as_bytes()), *port, "{text}");
            assert_eq!(host_port(text.as_bytes()), *with_host, "{text}");
        }
    }

    #[test]
    fn debugpy_rows() {
        let site = "/usr/lib/python3/site-packages";
        let rows: Vec<(String, Option<&str>, Vec<u16>)> = vec![
            (format!("python3 -X frozen_modules=off {site}/debugpy --connect 127.0.0.1:41000 --configure-qt none --adapter-access-token tok app.py"), None, vec![41000]),
            ("python3 -m debugpy --listen 5678 --wait-for-client app.py".into(), None, vec![5678]),
            ("python3 -m debugpy --listen=0.0.0.0:5678 -m app".into(), None, vec![5678]),
            ("python3 -m debugpy --connect=[::1]:6000 -c pass".into(), None, vec![6000]),
            (format!("python3 {site}/debugpy/ --connect 7000 app.py"), None, vec![7000]),
            (format!("python3 {site}/debugpy/__main__.py --connect 7001 app.py"), None, vec![7001]),
            ("/venv/bin/python /venv/bin/debugpy --listen 5679 app.py".into(), None, vec![5679]),
            // The program's own arguments are not debugpy's.
            ("python3 -m debugpy --connect 7002 app.py --connect 7003".into(), None, vec![7002]),
            ("python3 -m debugpy --log-to --connect --connect 7004 app.py".into(), None, vec![7004]),
            ("python3 app.py --connect 127.0.0.1:7005".into(), None, vec![]),
            ("python3 -c pass --connect 7006".into(), None, vec![]),
            ("node app.js --listen 7007".into(), None, vec![]),
            // Malformed values.
            ("python3 -m debugpy --connect".into(), None, vec![]),
            ("python3 -m debugpy --connect app.py".into(), None, vec![]),
            ("python3 -m debugpy --connect 127.0.0.1:70000 app.py".into(), None, vec![]),
            ("python3 -m debugpy --connect= app.py".into(), None, vec![]),
            ("python3 -m debugpy --listen host: app.py".into(), None, vec![]),
            // DEBUGPY_EXTRA_ARGV, on any command line.
            ("python3 app.py".into(), Some("--connect 127.0.0.1:7008"), vec![7008]),
            ("python3 app.py".into(), Some("  --listen  7009 --wait-for-client "), vec![7009]),
            ("python3 app.py".into(), Some("--connect"), vec![]),
            ("python3 -m debugpy --connect 7010 app.py".into(), Some("--listen 7011"), vec![7010, 7011]),
        ];
        for (line, extra, expected) in rows {
            let argv = split(&line);
            let got = collect(|add| debugpy(&argv, extra.map(str::as_bytes), &mut |p| add(p)));
            assert_eq!(got, expected, "{line} / {extra:?}");
        }
    }

    #[test]
    fn pydevd_rows() {
        let rows: &[(&str, &[u16])] = &[
            ("python3 /x/pydevd.py --multiprocess --client 127.0.0.1 --port 56352 --file app.py", &[56352]),
            ("python3 /x/pydevd.py --port 56353 --client localhost --file app.py", &[56353]),
            ("python3 -c import(sys);pydevd.settrace(host='127.0.0.1',port=56354,suspend=False);run()", &[56354]),
            // Either half alone is somebody else's flag.
            ("python3 app.py --port 8080", &[]),
            ("python3 app.py --client me", &[]),
            ("python3 -c pydevd.settrace(host='h')", &[]),
            ("python3 -c settrace(port=1)", &[]),
            // Malformed.
            ("python3 /x/pydevd.py --client 127.0.0.1 --port", &[]),
            ("python3 /x/pydevd.py --client 127.0.0.1 --port 65536", &[]),
            ("python3 /x/pydevd.py --client 127.0.0.1 --port abc", &[]),
            ("python3 -c pydevd.settrace(port=)", &[]),
            ("python3 -c pydevd.settrace(port=999999)", &[]),
        ];
        for (line, expected) in rows {
            let argv = split(line);
            let got = collect(|add| pydevd(&argv, &mut |p| add(p)));
            assert_eq!(got, *expected, "{line}");
        }
        // The code pydevd 3 really writes for a `-c` subprocess.
        let code = "import sys; sys.path.insert(0, r'/x/pydevd'); import pydevd; pydevd.config('http_json', 'debugpy-dap'); pydevd.settrace(host='127.0.0.1', port=56355, suspend=False, trace_only_current_thread=False, patch_multiprocessing=True, access_token=None, client_access_token='t', __setup_holder__={'client': '127.0.0.1', 'port': 56355}); print(1)";
        let argv: [&[u8]; 3] = [b"python3", b"-c", code.as_bytes()];
        assert_eq!(collect(|add| pydevd(&argv, &mut |p| add(p))), [56355]);
    }

    #[test]
    fn jdwp_rows() {
        let rows: &[(&str, &[u16])] = &[
            ("java -agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=*:5005 -jar app.jar", &[5005]),
            ("java -agentlib:jdwp=transport=dt_socket,address=5006,server=n Main", &[5006]),
            ("java -agentlib:jdwp=transport=dt_socket,address=localhost:5007", &[5007]),
            ("java -Xdebug -Xrunjdwp:transport=dt_socket,server=y,address=8000", &[8000]),
            ("-agentlib:jdwp=address=[::1]:5008", &[5008]),
            // Malformed or no address.
            ("java -agentlib:jdwp=help", &[]),
            ("java -agentlib:jdwp=transport=dt_socket,address=", &[]),
            ("java -agentlib:jdwp=address=garbage", &[]),
            ("java -agentlib:jdwp=address=*:99999", &[]),
            ("java -agentlib:jdwp=address=*:0", &[]),
            ("java -agentlib:jdwp", &[]),
            ("java -agentlib:hprof=address=5009", &[]),
            ("java -Dsome.address=5010 Main", &[]),
        ];
        for (line, expected) in rows {
            let argv = split(line);
            let got = collect(|add| jdwp(argv.iter().copied(), &mut |p| add(p)));
            assert_eq!(got, *expected, "{line}");
        }
    }

    #[test]
    fn node_rows() {
        let rows: &[(&str, &[u16])] = &[
            ("node --inspect app.js", &[9229]),
            ("node --inspect-brk app.js", &[9229]),
            ("node --inspect-wait app.js", &[9229]),
            ("node --inspect=9230 app.js", &[9230]),
            ("node --inspect-brk=127.0.0.1:9231 app.js", &[9231]),
            ("node --inspect=[::1]:9232 app.js", &[9232]),
            ("node --inspect=0.0.0.0 app.js", &[9229]),
            ("node --inspect=localhost app.js", &[9229]),
            ("node --inspect --inspect-port=9233 app.js", &[9229, 9233]),
            ("node --inspect-port 9234 app.js", &[9234]),
            ("node --debug-port=9235 app.js", &[9235]),
            // Malformed.
            ("node --inspect=99999 app.js", &[]),
            ("node --inspect=0 app.js", &[]),
            ("node --inspect=host: app.js", &[]),
            ("node --inspect-port", &[]),
            ("node --inspect-port=x", &[]),
            ("node --inspector app.js", &[]),
            ("node app.js", &[]),
        ];
        for (line, expected) in rows {
            let argv = split(line);
            let got = collect(|add| node(argv.iter().copied(), &mut |p| add(p)));
            assert_eq!(got, *expected, "{line}");
        }
    }
}
