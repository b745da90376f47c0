//! `sendmmsg`/`recvmmsg` and `sendmsg` on an unconnected UDP socket to a
//! remote destination: one relay per destination, and replies reported as
//! coming from the remote address.

mod support;

use std::process::Command;

use support::{checked, preloaded, CProgram, FakeProxy};

const PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int main(void) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in dst;
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons(53);
    dst.sin_addr.s_addr = inet_addr("10.99.0.8");

    char *payload[2] = {"m1", "m2"};
    struct iovec iov[2];
    struct mmsghdr out[2];
    memset(out, 0, sizeof out);
    for (int i = 0; i < 2; i++) {
        iov[i].iov_base = payload[i];
        iov[i].iov_len = 2;
        out[i].msg_hdr.msg_name = &dst;
        out[i].msg_hdr.msg_namelen = sizeof dst;
        out[i].msg_hdr.msg_iov = &iov[i];
        out[i].msg_hdr.msg_iovlen = 1;
    }
    int n = sendmmsg(u, out, 2, 0);
    printf("sent %d %u %u\n", n, out[0].msg_len, out[1].msg_len);

    int got = 0;
    while (got < 2) {
        struct sockaddr_in src[2];
        char buf[2][16];
        struct iovec riov[2];
        struct mmsghdr in[2];
        memset(in, 0, sizeof in);
        for (int i = 0; i < 2; i++) {
            riov[i].iov_base = buf[i];
            riov[i].iov_len = sizeof buf[i] - 1;
            in[i].msg_hdr.msg_name = &src[i];
            in[i].msg_hdr.msg_namelen = sizeof src[i];
            in[i].msg_hdr.msg_iov = &riov[i];
            in[i].msg_hdr.msg_iovlen = 1;
        }
        struct timespec timeout = {5, 0};
        n = recvmmsg(u, in, 2 - got, MSG_WAITFORONE, &timeout);
        if (n <= 0) { perror("recvmmsg"); return 1; }
        for (int i = 0; i < n; i++) {
            buf[i][in[i].msg_len] = 0;
            printf("got %s from %s:%d len %u\n", buf[i], inet_ntoa(src[i].sin_addr),
                   ntohs(src[i].sin_port), in[i].msg_hdr.msg_namelen);
        }
        got += n;
    }

    struct iovec one = {"m3", 2};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &dst;
    msg.msg_namelen = sizeof dst;
    msg.msg_iov = &one;
    msg.msg_iovlen = 1;
    printf("sendmsg %zd\n", sendmsg(u, &msg, 0));
    char buf[16];
    struct sockaddr_in src;
    socklen_t len = sizeof src;
    ssize_t r = recvfrom(u, buf, sizeof buf - 1, 0, (struct sockaddr *)&src, &len);
    buf[r > 0 ? r : 0] = 0;
    printf("got %s from %s:%d len %u\n", buf, inet_ntoa(src.sin_addr), ntohs(src.sin_port), len);
    return 0;
}
"#;

#[test]
fn batched_and_message_sends_to_a_remote_destination_share_one_relay() {
    let program = CProgram::build("udp", PROGRAM);
    let proxy = FakeProxy::start();
    let out = preloaded(
        &mut Command::new(&program.binary),
        &proxy,
        r#"{"feature":{"fs":"local","network":{}}}"#,
    )
    .output()
    .unwrap();
    let out = checked(out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "sent 2 2 2",
            "got m1 from 10.99.0.8:53 len 16",
            "got m2 from 10.99.0.8:53 len 16",
            "sendmsg 2",
            "got m3 from 10.99.0.8:53 len 16",
        ],
        "{out}"
    );
    let relays = proxy
        .log()
        .iter()
        .filter(|l| l.contains("ConnectOutgoing"))
        .count();
    assert_eq!(relays, 1, "{:#?}", proxy.log());
}
