//! The libc resolver entry points a C program calls directly
//! (`gethostbyname*`, `getaddrinfo` with a named service, `freeaddrinfo` of
//! both our lists and libc's) and `execve` with a bare environment.

mod support;

use std::process::Command;

use support::{checked, preloaded, CProgram, FakeProxy};

const PROGRAM: &str = r#"
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    char text[64];
    struct hostent *h = gethostbyname("db.mirrord.test");
    printf("ghbn %s %s\n", h ? h->h_name : "null",
           h ? inet_ntop(AF_INET, h->h_addr_list[0], text, sizeof text) : "-");
    h = gethostbyname("nope.mirrord.test");
    printf("ghbn_nope %d %d\n", h == NULL, h_errno);
    h = gethostbyname2("db.mirrord.test", AF_INET6);
    printf("ghbn2_v6 %d %d\n", h == NULL, h_errno);

    struct hostent ret, *res = NULL;
    char small[8], big[1024];
    int herr = 0;
    int rc = gethostbyname_r("db.mirrord.test", &ret, small, sizeof small, &res, &herr);
    printf("r_small %d %d\n", rc, res == NULL);
    rc = gethostbyname_r("db.mirrord.test", &ret, big, sizeof big, &res, &herr);
    printf("r %d %s %d\n", rc, res ? res->h_name : "null", res ? res->h_length : 0);
    rc = gethostbyname_r("nope.mirrord.test", &ret, big, sizeof big, &res, &herr);
    printf("r_nope %d %d %d\n", rc, res == NULL, herr);

    struct addrinfo hints, *local = NULL, *remote = NULL, *numeric = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo("localhost", "80", &hints, &local);
    printf("local %d\n", rc);
    rc = getaddrinfo("db.mirrord.test", "http", &hints, &remote);
    printf("remote %d %d %s\n", rc, ntohs(((struct sockaddr_in *)remote->ai_addr)->sin_port),
           remote->ai_next == NULL ? "single" : "many");
    rc = getaddrinfo("10.1.2.3", NULL, &hints, &numeric);
    printf("numeric %d\n", rc);
    freeaddrinfo(local);
    freeaddrinfo(remote);
    freeaddrinfo(numeric);
    fflush(stdout);

    char *argv[] = {"/usr/bin/env", NULL};
    char *envp[] = {"A=1", NULL};
    execve("/usr/bin/env", argv, envp);
    perror("execve");
    return 1;
}
"#;

#[test]
fn c_resolver_calls_and_execve_with_a_bare_environment() {
    let program = CProgram::build("resolver", PROGRAM);
    let binary = &program.binary;

    let proxy = FakeProxy::start();
    let config =
        r#"{"feature":{"fs":"local","network":{"dns":{"filter":{"local":["localhost"]}}}}}"#;
    let out = preloaded(Command::new(binary).env_clear(), &proxy, config)
        .output()
        .unwrap();
    let out = checked(out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ghbn db.mirrord.test 10.99.0.7", "{out}");
    assert_eq!(lines[1], "ghbn_nope 1 1", "HOST_NOT_FOUND: {out}");
    assert_eq!(lines[2], "ghbn2_v6 1 1", "no IPv6 address: {out}");
    assert_eq!(lines[3], format!("r_small {} 1", libc::ERANGE), "{out}");
    assert_eq!(lines[4], "r 0 db.mirrord.test 4", "{out}");
    assert_eq!(
        lines[5], "r_nope 0 1 1",
        "like glibc: 0, NULL, HOST_NOT_FOUND: {out}"
    );
    assert_eq!(lines[6], "local 0", "{out}");
    assert_eq!(lines[7], "remote 0 80 single", "{out}");
    assert_eq!(lines[8], "numeric 0", "{out}");
    // After execve: the child's environment (printed by env).
    assert!(lines.contains(&"A=1"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("LD_PRELOAD=") && l.ends_with("libmirrord_layer.so")),
        "{out}"
    );
    assert!(
        lines.contains(&format!("MIRRORD_INTPROXY_ADDR={}", proxy.addr).as_str()),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("MIRRORD_LAYER_CONFIG=")),
        "{out}"
    );

    let log = proxy.log();
    assert!(
        !log.iter()
            .any(|l| l.contains("\"localhost\"") || l.contains("10.1.2.3")),
        "local and numeric names stay local: {log:#?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.starts_with("hello")).count(),
        2,
        "{log:#?}"
    );
}
