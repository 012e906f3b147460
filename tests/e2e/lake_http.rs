//! What no SDK sends but the lake must still answer as the service does: requests without or with
//! a malformed SigV4 `Authorization` header, other operations, malformed bodies.

use aztrail_lake::{FaultConfig, Lake, LakeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/cloudtrail-data/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const CHANNEL: &str = "arn%3Aaws%3Acloudtrail%3Aus-east-1%3A000000000000%3Achannel%2Faztrail-local";

/// Sends one HTTP/1.1 request; returns the status and the `x-amzn-errortype` header.
async fn send(
    lake: &Lake,
    method: &str,
    target: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(lake.addr()).await.unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", lake.addr(), body.len());
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let kind = resp
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-amzn-errortype")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (status, kind)
}

/// method, target, Authorization header, body, and the expected (status, error type).
type Case<'a> = (&'a str, String, Option<&'a str>, &'a str, (u16, &'a str));

#[tokio::test]
async fn authentication_operations_and_bodies() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let put = format!("/PutAuditEvents?channelArn={CHANNEL}");
    let body = r#"{"auditEvents":[]}"#;
    let cases: Vec<Case> = vec![
        (
            "POST",
            put.clone(),
            None,
            body,
            (403, "MissingAuthenticationTokenException"),
        ),
        (
            "POST",
            put.clone(),
            Some("Bearer abc"),
            body,
            (403, "IncompleteSignatureException"),
        ),
        (
            "POST",
            put.clone(),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/cloudtrail-data/aws4_request",
            ),
            body,
            (403, "IncompleteSignatureException"),
        ),
        (
            "POST",
            put.clone(),
            Some(&AUTH[..AUTH.len() - 2]),
            body,
            (403, "IncompleteSignatureException"),
        ),
        (
            "POST",
            put.clone(),
            Some(AUTH.replace("cloudtrail-data", "s3").leak()),
            body,
            (403, "InvalidSignatureException"),
        ),
        (
            "POST",
            "/DeleteChannel".into(),
            Some(AUTH),
            body,
            (400, "UnsupportedOperationException"),
        ),
        (
            "GET",
            put.clone(),
            Some(AUTH),
            "",
            (400, "UnsupportedOperationException"),
        ),
        (
            "POST",
            "/PutAuditEvents".into(),
            Some(AUTH),
            body,
            (400, "ValidationException"),
        ),
        (
            "POST",
            put.clone(),
            Some(AUTH),
            "{not json",
            (400, "SerializationException"),
        ),
        (
            "POST",
            put.clone(),
            Some(AUTH),
            body,
            (400, "ValidationException"),
        ),
    ];
    for (method, target, auth, body, (status, kind)) in cases {
        let got = send(&lake, method, &target, auth, body).await;
        assert_eq!(
            got,
            (status, kind.to_string()),
            "{method} {target} auth={auth:?} body={body}"
        );
    }
    lake.stop().await;
}

/// Sends headers that declare `declared` body bytes, then `sent` of them; returns the status.
async fn status_after_headers(
    lake: &Lake,
    auth: Option<&str>,
    declared: usize,
    sent: &[u8],
) -> u16 {
    let mut s = tokio::net::TcpStream::connect(lake.addr()).await.unwrap();
    let mut req = format!(
        "POST /PutAuditEvents?channelArn={CHANNEL} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\nConnection: close\r\n"
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let _ = s.write_all(sent).await;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    String::from_utf8_lossy(&resp)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn hostile_bodies_are_refused_and_the_lake_keeps_serving() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let put = format!("/PutAuditEvents?channelArn={CHANNEL}");
    // Deep nesting in an unknown field once overflowed a worker's stack and aborted the process.
    let deep = format!("{{\"x\":{}{}}}", "[".repeat(20_000), "]".repeat(20_000));
    assert_eq!(
        send(&lake, "POST", &put, Some(AUTH), &deep).await,
        (400, "ValidationException".to_string())
    );
    // Brackets inside strings are not nesting.
    let in_string = format!("{{\"auditEvents\":[],\"x\":\"{}\"}}", "[".repeat(20_000));
    assert_eq!(
        send(&lake, "POST", &put, Some(AUTH), &in_string).await.0,
        400
    );
    // Over 1 MB declared: refused before a byte of the body is read, after authentication.
    assert_eq!(
        status_after_headers(&lake, Some(AUTH), 16 << 20, b"").await,
        413
    );
    assert_eq!(status_after_headers(&lake, None, 16 << 20, b"").await, 403);
    // Still serving.
    assert_eq!(
        send(&lake, "POST", &put, Some(AUTH), "{not json").await,
        (400, "SerializationException".to_string())
    );
    lake.stop().await;
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_connections_are_bounded() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        limits: aztrail_lake::connections::ConnLimits {
            max_connections: 4,
            header_timeout: std::time::Duration::from_millis(300),
            body_timeout: std::time::Duration::from_millis(300),
            first_request_timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    // Idle connections fill every slot; each is closed by the server, not by us.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(lake.addr()).await.unwrap());
    }
    for mut c in idle {
        let mut buf = [0u8; 64];
        // EOF (0) or a reset: either way the server let go.
        // (The bound only turns a server that never closes into a failure instead of a hang.)
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), c.read(&mut buf))
            .await
            .expect("the server closes an idle connection")
            .unwrap_or(0);
        assert_eq!(n, 0, "the server closed an idle connection");
    }
    // A body that never arrives is given up on: 408, and the slot is freed.
    assert_eq!(
        status_after_headers(&lake, Some(AUTH), 100, b"{").await,
        408
    );
    // After all that, calls are served.
    let put = format!("/PutAuditEvents?channelArn={CHANNEL}");
    assert_eq!(
        send(&lake, "POST", &put, Some(AUTH), "{not json").await.0,
        400
    );
    lake.stop().await;
}

/// Hostile round 2, item 11: 2,000 idle connections (four times the serving slots) do not keep
/// a valid call waiting: silent connections hold no slot and are closed soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_does_not_starve_valid_calls() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(tokio::net::TcpStream::connect(lake.addr()).await.unwrap());
    }
    let put = format!("/PutAuditEvents?channelArn={CHANNEL}");
    // The bound only turns a starved call (it waited 20 s behind the idle ones) into a failure.
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        send(&lake, "POST", &put, Some(AUTH), "{not json"),
    )
    .await
    .expect("a valid call is answered while 2,000 connections sit idle");
    assert_eq!(answer.0, 400);
    drop(idle);
    lake.stop().await;
}

/// Hostile round 2, item 11: the bodies held at once are bounded across all connections. With a
/// budget of one largest body, a second large body while the first is still arriving is
/// throttled (which the SDKs retry) instead of held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_held_at_once_are_bounded_across_connections() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        limits: aztrail_lake::connections::ConnLimits {
            body_budget: 1 << 20,
            body_timeout: std::time::Duration::from_secs(30),
            ..Default::default()
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    // The first declares 1,000,000 bytes and sends one: it holds the whole budget.
    let mut slow = tokio::net::TcpStream::connect(lake.addr()).await.unwrap();
    slow.write_all(
        format!(
            "POST /PutAuditEvents?channelArn={CHANNEL} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nAuthorization: {AUTH}\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Give the lake the first request before the second (the order is the test's premise).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        status_after_headers(&lake, Some(AUTH), 1_000_000, &vec![b' '; 1_000_000]).await,
        429
    );
    drop(slow);
    // Once it is gone, its share is back: bodies are read again.
    let put = format!("/PutAuditEvents?channelArn={CHANNEL}");
    let mut answered = 0;
    for _ in 0..50 {
        answered = send(&lake, "POST", &put, Some(AUTH), "{not json").await.0;
        if answered == 400 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(answered, 400);
    lake.stop().await;
}
