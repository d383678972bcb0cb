//! The OpenAI-compatible client against a local HTTP server that this test
//! starts on loopback. The server replays real OpenAI response shapes and
//! injects faults per item: 429 with Retry-After, 500s, a response slower
//! than the timeout, malformed JSON, a dropped connection, answers outside
//! the schema, a refusal, a truncated answer. No item may be lost or
//! double-counted, and every error must be counted. A second server speaks
//! llama.cpp 0.3's dialect (422 on `json_schema`): the client must find the
//! fallback by itself, once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slm_vs_llm::methods::llm::openai::{ClientConfig, Dialect, Endpoint, OpenAiClient, Secret};
use slm_vs_llm::methods::llm::prompt::{answer_schema, AnswerError, Message};

const KEY: &str = "sk-test-SECRET-0123456789";

#[derive(Clone, Copy, Debug)]
enum Fault {
    Ok,
    RateLimited,
    ServerError,
    Slow,
    Malformed,
    Drop,
    OffSchema,
    Refusal,
    Truncated,
}

struct Server {
    url: String,
    /// Requests seen per item.
    requests: Arc<Mutex<HashMap<usize, usize>>>,
    /// `response_format.type` of every request.
    formats: Arc<Mutex<Vec<String>>>,
    auth_ok: Arc<AtomicUsize>,
}

fn completion(content: &str, finish: &str, refusal: Option<&str>) -> String {
    serde_json::json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000u64, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal}, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    })
    .to_string()
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
}

/// How a llama.cpp-style server rejects `json_schema`: early 0.3 releases with a 422,
/// 0.3.16 with a 500 whose body names the field (both bodies as those servers send them).
#[derive(Clone, Copy)]
enum Rejects {
    No,
    With422,
    With500,
}

/// `plan(item, attempt)` decides each response.
fn start(plan: fn(usize, usize) -> Fault, rejects: Rejects) -> Server {
    start_at("127.0.0.1:0", plan, rejects)
}

/// As [`start`], listening on `address`.
fn start_at(address: &str, plan: fn(usize, usize) -> Fault, rejects: Rejects) -> Server {
    let listener = TcpListener::bind(address).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests: Arc<Mutex<HashMap<usize, usize>>> = Default::default();
    let formats: Arc<Mutex<Vec<String>>> = Default::default();
    let auth_ok = Arc::new(AtomicUsize::new(0));
    let (r, f, a) = (requests.clone(), formats.clone(), auth_ok.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(500) {
            let Ok(mut stream) = stream else { continue };
            let (r, f, a) = (r.clone(), f.clone(), a.clone());
            std::thread::spawn(move || {
                let Some((headers, body)) = read_request(&stream) else { return };
                if lists_models(&headers, &mut stream, "test-model") {
                    return;
                }
                if headers.contains(&format!("authorization: bearer {}", KEY.to_ascii_lowercase())) {
                    a.fetch_add(1, Ordering::SeqCst);
                }
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let format = request["response_format"]["type"].as_str().unwrap_or_default().to_string();
                f.lock().unwrap().push(format.clone());
                let rejection = match (rejects, format == "json_schema") {
                    (Rejects::With422, true) => Some((
                        "422 Unprocessable Entity",
                        r#"{"detail":[{"loc":["body","response_format","type"],"msg":"value is not a valid enumeration member; permitted: 'text', 'json_object'"}]}"#,
                    )),
                    (Rejects::With500, true) => Some((
                        "500 Internal Server Error",
                        r#"{"error":{"message":"1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}","type":"internal_server_error","param":null,"code":null}}"#,
                    )),
                    _ => None,
                };
                if let Some((status, body)) = rejection {
                    return respond(&mut stream, status, "", body);
                }
                let text =
                    request["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
                let item: usize = text.trim_start_matches("item ").parse().unwrap();
                let attempt = {
                    let mut map = r.lock().unwrap();
                    let n = map.entry(item).or_default();
                    *n += 1;
                    *n
                };
                let label = ["World", "Sports", "Business", "Sci/Tech"][item % 4];
                match plan(item, attempt) {
                    Fault::Ok => respond(
                        &mut stream,
                        "200 OK",
                        "",
                        &completion(&format!("{{\"label\": \"{label}\"}}"), "stop", None),
                    ),
                    Fault::RateLimited => respond(
                        &mut stream,
                        "429 Too Many Requests",
                        "Retry-After: 1\r\n",
                        r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
                    ),
                    Fault::ServerError => respond(
                        &mut stream,
                        "500 Internal Server Error",
                        "",
                        r#"{"error":{"message":"The server had an error","type":"server_error"}}"#,
                    ),
                    Fault::Slow => {
                        std::thread::sleep(Duration::from_millis(1500));
                        respond(
                            &mut stream,
                            "200 OK",
                            "",
                            &completion(&format!("{{\"label\": \"{label}\"}}"), "stop", None),
                        );
                    }
                    Fault::Malformed => respond(&mut stream, "200 OK", "", r#"{"id": "chatcmpl-test", "choices": [{"#),
                    Fault::Drop => drop(stream),
                    Fault::OffSchema => {
                        respond(&mut stream, "200 OK", "", &completion(r#"{"label": "Weather"}"#, "stop", None))
                    }
                    Fault::Refusal => {
                        respond(&mut stream, "200 OK", "", &completion("", "stop", Some("I can't help with that.")))
                    }
                    Fault::Truncated => {
                        respond(&mut stream, "200 OK", "", &completion(r#"{"label": "Wor"#, "length", None))
                    }
                }
            });
        }
    });
    Server { url, requests, formats, auth_ok }
}

fn labels() -> Vec<String> {
    ["World", "Sports", "Business", "Sci/Tech"].map(String::from).to_vec()
}

fn client(server: &Server, cache_dir: Option<std::path::PathBuf>) -> Arc<OpenAiClient> {
    let endpoint =
        Endpoint { base_url: server.url.clone(), model: "test-model".into(), api_key: Some(Secret::new(KEY.into())) };
    let config = ClientConfig {
        timeout: Duration::from_millis(800),
        max_retries: 3,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        concurrency: 4,
        cache_dir,
        ..Default::default()
    };
    Arc::new(OpenAiClient::new(endpoint, config).unwrap())
}

fn questions(n: usize) -> Vec<Vec<Message>> {
    (0..n).map(|i| vec![Message::system("Classify."), Message::user(format!("item {i}"))]).collect()
}

fn faults(item: usize, attempt: usize) -> Fault {
    match (item, attempt) {
        (1, 1) => Fault::RateLimited,
        (2, 1 | 2) => Fault::ServerError,
        (3, 1) => Fault::Slow,
        (4, 1) => Fault::Malformed,
        (5, _) => Fault::OffSchema,
        (6, 1) => Fault::Drop,
        (7, _) => Fault::ServerError,
        (8, _) => Fault::Refusal,
        (9, _) => Fault::Truncated,
        _ => Fault::Ok,
    }
}

#[test]
fn faults_are_retried_or_counted_and_no_item_is_lost() {
    let server = start(faults, Rejects::No);
    let cache = tempfile::tempdir().unwrap();
    let client = client(&server, Some(cache.path().to_path_buf()));
    let schema = answer_schema(&labels(), false);
    let n = 14;
    let started = std::time::Instant::now();
    let answers = client.ask_all(questions(n), &schema, &labels(), &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(answers.len(), n);
    for (i, a) in answers.iter().enumerate() {
        match i {
            5 => assert!(matches!(a.error, Some(AnswerError::Invalid(_))), "{i}: {a:?}"),
            7 => assert!(matches!(a.error, Some(AnswerError::Request(_))), "{i}: {a:?}"),
            8 => assert!(matches!(a.error, Some(AnswerError::Refused(_))), "{i}: {a:?}"),
            9 => assert!(matches!(a.error, Some(AnswerError::Truncated(_))), "{i}: {a:?}"),
            _ => assert_eq!((a.label, &a.error), (Some(i % 4), &None), "{i}: {a:?}"),
        }
    }
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests[&0], 1);
    assert_eq!(requests[&1], 2, "one retry after the 429");
    assert_eq!(requests[&2], 3, "two retries after two 500s");
    assert_eq!((requests[&3], requests[&4], requests[&6]), (2, 2, 2), "slow, malformed and dropped are retried once");
    assert_eq!(requests[&5], 1, "a schema violation is an answer, not retried");
    assert_eq!(requests[&7], 4, "first attempt + max_retries");
    assert_eq!(answers[7].attempts, 4);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    let errors = answers.iter().filter(|a| a.error.is_some()).count();
    assert_eq!(errors, 4);
    assert_eq!(answers[0].usage.prompt_tokens, 42);
    assert_eq!(
        server.auth_ok.load(Ordering::SeqCst),
        requests.values().sum::<usize>(),
        "the key is sent on every request"
    );
    assert_eq!(client.dialect(), Some(Dialect::JsonSchema));

    // The key never appears in what the client exposes or stores.
    assert!(!format!("{:?}", client.endpoint()).contains(KEY));
    assert!(!format!("{answers:?}").contains(KEY));
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    }

    // A re-run is served from the cache: no request for any answered item.
    let before: usize = requests.values().sum();
    let again = client.ask_all(questions(n), &schema, &labels(), &indicatif::ProgressBar::hidden()).unwrap();
    let after: usize = server.requests.lock().unwrap().values().sum();
    let answered = answers.iter().filter(|a| a.content.is_some()).count();
    assert_eq!(again.iter().filter(|a| a.cached).count(), answered);
    assert_eq!(answered, n - 1);
    assert_eq!(after - before, 4, "only the failed item is asked again (first attempt + 3 retries)");
    assert_eq!(again.iter().map(|a| a.label).collect::<Vec<_>>(), answers.iter().map(|a| a.label).collect::<Vec<_>>());
}

#[test]
fn a_llama_cpp_style_server_gets_the_json_object_dialect_discovered_once() {
    for rejects in [Rejects::With422, Rejects::With500] {
        dialect_is_discovered_once(rejects);
    }
}

fn dialect_is_discovered_once(rejects: Rejects) {
    let server = start(|_, _| Fault::Ok, rejects);
    let client = client(&server, None);
    let schema = answer_schema(&labels(), false);
    // Four requests in flight from the start: one finds the dialect, the others wait for it.
    let first = client.ask_all(questions(6), &schema, &labels(), &indicatif::ProgressBar::hidden()).unwrap();
    assert!(first.iter().enumerate().all(|(i, a)| a.label == Some(i % 4)));
    assert_eq!(client.dialect(), Some(Dialect::JsonObjectWithSchema));
    let rest = client.ask_all(questions(6)[..3].to_vec(), &schema, &labels(), &indicatif::ProgressBar::hidden());
    assert!(rest.unwrap().iter().all(|a| a.label.is_some() && !a.cached));
    let formats = server.formats.lock().unwrap().clone();
    assert_eq!(formats.iter().filter(|f| *f == "json_schema").count(), 1, "{formats:?}");
    assert_eq!(formats.len(), 1 + 6 + 3);
}

/// One HTTP request from `stream`: its header lines (trimmed, lower-cased)
/// and its body; `None` when the client hung up.
fn read_request(stream: &TcpStream) -> Option<(Vec<String>, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let (mut headers, mut length) = (Vec::new(), 0);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let header = line.trim().to_ascii_lowercase();
        if let Some(v) = header.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        headers.push(header);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

/// Answers a `GET /models` (the client asks once which model is served)
/// with `served` as the one model; false for any other request.
fn lists_models(headers: &[String], stream: &mut TcpStream, served: &str) -> bool {
    if !headers.first().is_some_and(|line| line.starts_with("get ") && line.contains("/models")) {
        return false;
    }
    respond(stream, "200 OK", "", &format!(r#"{{"object":"list","data":[{{"id":"{served}","object":"model"}}]}}"#));
    true
}

/// A loopback server that reads each request and answers it with `reply`
/// (given the request's JSON body); its base URL.
fn loopback_server(reply: impl Fn(&mut TcpStream, &serde_json::Value) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if let Some((headers, body)) = read_request(&stream) {
                if !lists_models(&headers, &mut stream, "test-model") {
                    reply(&mut stream, &serde_json::from_slice(&body).unwrap_or_default());
                }
            }
        }
    });
    url
}

/// A server that answers every request with `status` and a body echoing the key.
fn refusing_server(status: &'static str) -> String {
    loopback_server(move |stream, _| {
        let reply = format!("{{\"error\": {{\"message\": \"Incorrect API key provided: {KEY}\"}}}}");
        respond(stream, status, "", &reply);
    })
}

fn client_for(url: &str) -> Arc<OpenAiClient> {
    let endpoint =
        Endpoint { base_url: url.into(), model: "test-model".into(), api_key: Some(Secret::new(KEY.into())) };
    let config = ClientConfig {
        timeout: Duration::from_millis(500),
        max_retries: 2,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
        concurrency: 4,
        ..Default::default()
    };
    Arc::new(OpenAiClient::new(endpoint, config).unwrap())
}

#[test]
fn a_refused_key_fails_the_run_loudly_without_the_key_in_the_error() {
    for status in ["401 Unauthorized", "403 Forbidden", "404 Not Found"] {
        let client = client_for(&refusing_server(status));
        let schema = answer_schema(&labels(), false);
        let err = client
            .ask_all(questions(20), &schema, &labels(), &indicatif::ProgressBar::hidden())
            .expect_err("a refused run is an error");
        let message = format!("{err:#}");
        assert!(message.contains(&status[..3]) && message.contains("OPENAI_API_KEY"), "{message}");
        assert!(!message.contains(KEY) && message.contains("***"), "the key leaked: {message}");
    }
}

#[test]
fn a_dead_server_fails_the_run_loudly() {
    // Bind, then close: nothing listens on this port.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = client_for(&format!("http://user:pw@127.0.0.1:{port}/v1"));
    let schema = answer_schema(&labels(), false);
    let err = client
        .ask_all(questions(6), &schema, &labels(), &indicatif::ProgressBar::hidden())
        .expect_err("no answer at all is an error");
    let message = format!("{err:#}");
    assert!(message.contains("6 of the 6 requests"), "{message}");
    assert!(!message.contains("pw@"), "credentials in the URL leaked: {message}");
}

#[test]
fn a_huge_response_body_is_an_error_not_a_memory_hog() {
    let url = loopback_server(|stream, _| {
        let size = 4 << 20;
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        let chunk = vec![b' '; 64 << 10];
        for _ in 0..size / chunk.len() {
            if stream.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let client = client_for(&url);
    let schema = answer_schema(&labels(), false);
    let err = client.ask_all(questions(2), &schema, &labels(), &indicatif::ProgressBar::hidden()).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("2 of 2 requests") && message.contains("larger than"), "{message}");
}

/// A chat completion whose answer `{"label":"<label>"}` comes with OpenAI's
/// `logprobs`: the label one token, 0.7 likely, "Sports" 0.2 and "Sci" 0.05
/// as alternatives at its position.
fn completion_with_logprobs(label: &str) -> String {
    let ln = |p: f64| p.ln();
    let top = |first: &str| {
        serde_json::json!([
            {"token": first, "logprob": ln(0.7), "bytes": null},
            {"token": "Sports", "logprob": ln(0.2), "bytes": null},
            {"token": "Sci", "logprob": ln(0.05), "bytes": null},
        ])
    };
    serde_json::json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000u64, "model": "test-model",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": format!("{{\"label\":\"{label}\"}}")},
            "logprobs": {"content": [
                {"token": "{\"label\":\"", "logprob": 0.0, "bytes": null, "top_logprobs": []},
                {"token": label, "logprob": ln(0.7), "bytes": null, "top_logprobs": top(label)},
                {"token": "\"}", "logprob": 0.0, "bytes": null, "top_logprobs": []},
            ]}}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 3, "total_tokens": 45}
    })
    .to_string()
}

#[test]
fn labels_are_scored_from_the_servers_logprobs() {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let url = loopback_server(move |stream, request| {
        seen.lock().unwrap().push((request["logprobs"].clone(), request["top_logprobs"].clone()));
        respond(stream, "200 OK", "", &completion_with_logprobs("World"));
    });
    let client = client_for(&url);
    let answers = client
        .ask_all(questions(3), &answer_schema(&labels(), false), &labels(), &indicatif::ProgressBar::hidden())
        .unwrap();
    for a in &answers {
        assert_eq!(a.label, Some(0), "{a:?}");
        let scores = a.label_log_probs.as_ref().expect("label scores from logprobs");
        // World 0.7, Sports 0.2, Business (nothing listed) the least listed 0.05, Sci/Tech 0.05.
        let expected = [0.7f64, 0.2, 0.05, 0.05].map(|p| p.ln() as f32);
        for (s, e) in scores.iter().zip(expected) {
            assert!((s - e).abs() < 1e-5, "{scores:?}");
        }
    }
    assert!(asked.lock().unwrap().iter().all(|(l, n)| l == &serde_json::json!(true) && n == &serde_json::json!(20)));
    assert_eq!(client.label_scoring(), "3 answers scored from the top-20 logprobs");
}

#[test]
fn a_server_that_rejects_logprobs_is_asked_without_them_and_says_so() {
    let url = loopback_server(|stream, request| {
        if request.get("logprobs").is_some() {
            let body = r#"{"error":{"message":"logprobs is not supported by this model","type":"invalid_request_error","param":"logprobs"}}"#;
            respond(stream, "400 Bad Request", "", body);
        } else {
            respond(stream, "200 OK", "", &completion("{\"label\": \"Business\"}", "stop", None));
        }
    });
    let client = client_for(&url);
    let answers = client
        .ask_all(questions(4), &answer_schema(&labels(), false), &labels(), &indicatif::ProgressBar::hidden())
        .unwrap();
    assert!(
        answers.iter().all(|a| a.label == Some(2) && a.error.is_none() && a.label_log_probs.is_none()),
        "{answers:?}"
    );
    let scoring = client.label_scoring();
    assert!(
        scoring.starts_with("none: the server rejected logprobs") && scoring.contains("not supported"),
        "{scoring}"
    );
}

/// A server that answers `healthy` requests, then dies (its port closed).
fn server_that_dies_after(healthy: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut answered = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((headers, _)) = read_request(&stream) else { continue };
            if !lists_models(&headers, &mut stream, "test-model") {
                respond(&mut stream, "200 OK", "", &completion("{\"label\": \"Sports\"}", "stop", None));
                answered += 1;
                if answered == healthy {
                    break;
                }
            }
        }
        // The listener is dropped here: every later connection is refused.
    });
    url
}

#[test]
fn a_server_that_dies_mid_run_stops_the_run_early_and_a_rerun_asks_only_the_rest() {
    let cache = tempfile::tempdir().unwrap();
    let endpoint = |url: String| Endpoint { base_url: url, model: "test-model".into(), api_key: None };
    let config = ClientConfig {
        timeout: Duration::from_millis(500),
        max_retries: 2,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
        concurrency: 1,
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    let schema = answer_schema(&labels(), false);
    let dead = server_that_dies_after(10);
    let client = Arc::new(OpenAiClient::new(endpoint(dead.clone()), config.clone()).unwrap());
    let started = std::time::Instant::now();
    let err = client.ask_all(questions(100), &schema, &labels(), &indicatif::ProgressBar::hidden()).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("stopped responding") && message.contains("10 answers received"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up only after {:?}", started.elapsed());

    // The server is back at the same address: the 10 cached answers are not asked again.
    let address = dead.trim_start_matches("http://").trim_end_matches("/v1").to_string();
    let revived = start_at(&address, |_, _| Fault::Ok, Rejects::No);
    let client = Arc::new(OpenAiClient::new(endpoint(revived.url.clone()), config.clone()).unwrap());
    let answers = client.ask_all(questions(100), &schema, &labels(), &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(answers.iter().filter(|a| a.cached).count(), 10);
    assert_eq!(revived.requests.lock().unwrap().values().sum::<usize>(), 90);

    // Another server with a model of the same name answers anew: the cache is keyed by the endpoint.
    let other = start(|_, _| Fault::Ok, Rejects::No);
    let client = Arc::new(OpenAiClient::new(endpoint(other.url.clone()), config).unwrap());
    let answers = client.ask_all(questions(20), &schema, &labels(), &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(answers.iter().filter(|a| a.cached).count(), 0, "another server's answers are not reused");
    assert_eq!(other.requests.lock().unwrap().values().sum::<usize>(), 20);
}

#[test]
fn one_items_retries_do_not_hold_up_the_others() {
    // Item 0 is rate-limited for good (Retry-After: 1 s, three retries); the
    // others answer at once. They must be asked while item 0 waits.
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = order.clone();
    let url = loopback_server(move |stream, request| {
        let text = request["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str());
        let item: usize = text.unwrap_or_default().trim_start_matches("item ").parse().unwrap_or(usize::MAX);
        seen.lock().unwrap().push(item);
        if item == 0 {
            respond(stream, "429 Too Many Requests", "Retry-After: 1\r\n", r#"{"error":{"message":"slow down"}}"#);
        } else {
            respond(stream, "200 OK", "", &completion("{\"label\": \"World\"}", "stop", None));
        }
    });
    let endpoint = Endpoint { base_url: url, model: "test-model".into(), api_key: None };
    let config = ClientConfig { max_retries: 3, concurrency: 2, ..Default::default() };
    let client = Arc::new(OpenAiClient::new(endpoint, config).unwrap());
    let answers = client
        .ask_all(questions(12), &answer_schema(&labels(), false), &labels(), &indicatif::ProgressBar::hidden())
        .unwrap();
    assert!(
        matches!(answers[0].error, Some(AnswerError::Request(_))) && answers[1..].iter().all(|a| a.label == Some(0))
    );
    let order = order.lock().unwrap();
    let attempts: Vec<usize> = order.iter().enumerate().filter(|(_, &i)| i == 0).map(|(at, _)| at).collect();
    assert_eq!(attempts.len(), 4, "{order:?}");
    // Every other item is answered before item 0's last attempt, whichever
    // of them the two workers happened to ask before item 0's first.
    let others_before_the_last = order[..attempts[3]].iter().filter(|&&i| i != 0).count();
    assert_eq!(others_before_the_last, 11, "the other items waited for item 0's retries: {order:?}");
}

#[test]
fn an_absurd_retry_after_is_cut_to_the_cap() {
    // Retry-After: 100000 s on the first attempt; the cap (here 50 ms) bounds the wait.
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let url = loopback_server(move |stream, _| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            respond(stream, "429 Too Many Requests", "Retry-After: 100000\r\n", r#"{"error":{"message":"later"}}"#);
        } else {
            respond(stream, "200 OK", "", &completion("{\"label\": \"Sports\"}", "stop", None));
        }
    });
    let endpoint = Endpoint { base_url: url, model: "test-model".into(), api_key: None };
    let config = ClientConfig { max_retry_after: Duration::from_millis(50), concurrency: 1, ..Default::default() };
    let client = Arc::new(OpenAiClient::new(endpoint, config).unwrap());
    let started = std::time::Instant::now();
    let answers = client
        .ask_all(questions(1), &answer_schema(&labels(), false), &labels(), &indicatif::ProgressBar::hidden())
        .unwrap();
    assert_eq!((answers[0].label, answers[0].attempts), (Some(1), 2));
    assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
}

/// A llama.cpp-style server at `address` (any model name accepted) serving
/// the GGUF `served`; its base URL and the count of questions it answered.
fn llama_style_server(address: &str, served: &'static str, questions: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(address).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((headers, _)) = read_request(&stream) else { continue };
            if !lists_models(&headers, &mut stream, served) {
                respond(&mut stream, "200 OK", "", &completion("{\"label\": \"Sports\"}", "stop", None));
                if count.fetch_add(1, Ordering::SeqCst) + 1 == questions {
                    break;
                }
            }
        }
    });
    (url, answered)
}

#[test]
fn another_gguf_behind_the_same_server_answers_anew() {
    let cache = tempfile::tempdir().unwrap();
    let config = ClientConfig { concurrency: 1, cache_dir: Some(cache.path().to_path_buf()), ..Default::default() };
    let schema = answer_schema(&labels(), false);
    let ask = |url: &str| {
        let endpoint = Endpoint { base_url: url.into(), model: "whatever".into(), api_key: None };
        let client = Arc::new(OpenAiClient::new(endpoint, config.clone()).unwrap());
        let answers = client.ask_all(questions(5), &schema, &labels(), &indicatif::ProgressBar::hidden()).unwrap();
        answers.iter().filter(|a| a.cached).count()
    };
    let (url, first) = llama_style_server("127.0.0.1:0", "models/smollm2-135m.gguf", 5);
    assert_eq!(ask(&url), 0);
    assert_eq!(first.load(Ordering::SeqCst), 5);
    let address = url.trim_start_matches("http://").trim_end_matches("/v1").to_string();
    // The port is free again once the first server stopped listening.
    std::thread::sleep(Duration::from_millis(100));
    let (url, second) = llama_style_server(&address, "models/qwen2.5-0.5b.gguf", 5);
    assert_eq!(ask(&url), 0, "the other model's answers are not reused");
    assert_eq!(second.load(Ordering::SeqCst), 5);
    let (url, third) = llama_style_server(&address, "models/qwen2.5-0.5b.gguf", 5);
    assert_eq!(ask(&url), 5, "the same model's answers are");
    assert_eq!(third.load(Ordering::SeqCst), 0);
}
