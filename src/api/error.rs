//! [`ApiError`]: the one error every handler answers with. It maps validation, parsing,
//! authentication, routing, load and engine failures to an HTTP status and OpenAI's error
//! body `{"error": {"message", "type", "param", "code"}}`, or to one SSE event when a
//! stream has already begun. Which failure happened is for the callers to say.
//!
//! Types follow OpenAI's API: `invalid_request_error` for every 4xx (its 401 and 404
//! answers use it too), `server_error` for 5xx. The official SDKs pick their exception
//! class (`BadRequestError`, `AuthenticationError`, `NotFoundError`...) from the status.

use crate::api::admission::Refusal;
use crate::engine::EngineError;
use crate::openai::{ErrorObject, ErrorResponse};
use crate::prompt::PromptError;
use crate::validate::ValidationError;
use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

/// `type` of client errors (4xx).
pub const INVALID_REQUEST_ERROR: &str = "invalid_request_error";
/// `type` of server errors (5xx).
pub const SERVER_ERROR: &str = "server_error";
/// Seconds a client is asked to wait (`Retry-After`) when the server is busy or loading.
pub const RETRY_AFTER_S: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// [`INVALID_REQUEST_ERROR`] or [`SERVER_ERROR`].
    pub error_type: &'static str,
    /// The request field at fault, e.g. `temperature` or `messages[2].role`.
    pub param: Option<String>,
    /// OpenAI's machine-readable reason, e.g. `model_not_found`.
    pub code: Option<String>,
    /// Sent as a `Retry-After` header (seconds): the request may succeed later.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with the type its status implies and no param or code.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            error_type: if status.is_server_error() {
                SERVER_ERROR
            } else {
                INVALID_REQUEST_ERROR
            },
            param: None,
            code: None,
            retry_after_s: None,
        }
    }

    fn with_param(mut self, param: Option<&str>) -> Self {
        self.param = param.map(str::to_string);
        self
    }

    fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    /// 400 for a value the request got wrong.
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message).with_param(param)
    }

    /// 400 for a body that is not JSON, or not the JSON object the endpoint expects.
    pub fn invalid_json(error: &serde_json::Error) -> Self {
        let detail = readable_serde_error(&error.to_string());
        let message = match error.classify() {
            Category::Data => {
                format!("The request body is not what this endpoint expects: {detail}.")
            }
            Category::Syntax | Category::Eof | Category::Io => format!(
                "We could not parse the JSON body of your request: {detail}. The body must be \
                 a JSON object."
            ),
        };
        Self::bad_request(message, None)
    }

    /// 401 for a missing or wrong API key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Missing or incorrect API key. Send it in the header 'Authorization: Bearer <key>'.",
        )
        .with_code("invalid_api_key")
    }

    /// 404 for a route this server does not have. `path` may start with the method
    /// (`"POST /v1/foo"`), as in OpenAI's message.
    pub fn not_found_route(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("Invalid URL ({path})."))
    }

    /// 404 for a model this server does not serve (`GET /v1/models/{id}`; the chat and
    /// completions endpoints get theirs from validation).
    pub fn model_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("The model '{name}' does not exist."),
        )
        .with_param(Some("model"))
        .with_code("model_not_found")
    }

    /// 413 for a body over the size limit.
    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than the limit of {limit_bytes} bytes."),
        )
    }

    /// 408: the body did not arrive in time.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "The request body did not arrive within {} s of its headers (--body-timeout).",
                limit.as_secs_f64()
            ),
        )
    }

    /// 503 with `Retry-After`: the request queue is full.
    pub fn overloaded() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is currently overloaded with other requests. Please retry after a \
             short wait.",
        );
        e.retry_after_s = Some(RETRY_AFTER_S);
        e
    }

    /// 503 with `Retry-After`: the model is still loading.
    pub fn loading() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The model is still loading. Please retry after a short wait.",
        );
        e.retry_after_s = Some(RETRY_AFTER_S);
        e
    }

    /// 400 `context_length_exceeded`: the prompt (`prompt_tokens`), plus `max_tokens` when
    /// the request set it, does not fit the model's `max_context`. `param` is `"messages"`
    /// for chat and `"prompt"` for text completions.
    pub fn context_length_exceeded(
        param: &str,
        prompt_tokens: usize,
        max_tokens: Option<usize>,
        max_context: usize,
    ) -> Self {
        let requested = match max_tokens {
            Some(m) => format!(
                "{} tokens ({prompt_tokens} in the {param}, {m} in the completion)",
                prompt_tokens + m
            ),
            None => format!("{prompt_tokens} tokens in the {param}"),
        };
        let reduce = match max_tokens {
            Some(_) => format!("the length of the {param} or completion"),
            None => format!("the length of the {param}"),
        };
        Self::bad_request(
            format!(
                "This model's maximum context length is {max_context} tokens. However, you \
                 requested {requested}. Please reduce {reduce}."
            ),
            Some(param),
        )
        .with_code("context_length_exceeded")
    }

    /// A prompt that could not be built: a template or context problem of the request
    /// (400, naming `param`: `messages` or `prompt`), or a tokenizer failure (500).
    pub fn prompt(e: PromptError, param: &str) -> Self {
        match e {
            PromptError::NoTemplate | PromptError::Template(_) => {
                Self::bad_request(e.to_string(), Some(param))
            }
            PromptError::Tokenizer(e) => Self::internal(e.to_string()),
            PromptError::UnknownToken { index, .. } => {
                Self::bad_request(e.to_string(), Some(&format!("{param}[{index}]")))
            }
            PromptError::ContextLengthExceeded {
                prompt_tokens,
                max_tokens,
                context,
            } => Self::context_length_exceeded(param, prompt_tokens, max_tokens, context),
        }
    }

    /// A client's share of the queue refused the request: 400 when the request alone is
    /// larger than a client may hold (naming `param`, `n` or `prompt`), else 429 with
    /// `Retry-After`: the client holds its share and may retry when some finish.
    pub fn client_refused(e: Refusal, param: &str) -> Self {
        match e {
            Refusal::Never { asked, limit } => Self::bad_request(
                format!(
                    "the request asks for {asked} sequences (its prompts times n) but one \
                     client may hold at most {limit} at once (--max-per-client); send fewer \
                     prompts or a lower n per request"
                ),
                Some(param),
            ),
            Refusal::Busy { held, limit } => {
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "You already have {held} sequences running or waiting here, and one \
                         client may hold at most {limit} (--max-per-client). Retry when some \
                         of your requests have finished."
                    ),
                )
                .with_code("rate_limit_exceeded");
                e.retry_after_s = Some(RETRY_AFTER_S);
                e
            }
        }
    }

    /// What the engine refused when a request was submitted; `param` is the field at
    /// fault (the prompt's, or `n` for too many sequences).
    pub fn engine(e: EngineError, param: &str) -> Self {
        match e {
            EngineError::QueueFull { .. } => Self::overloaded(),
            EngineError::TooLarge { .. } | EngineError::EmptyPrompt => {
                Self::bad_request(e.to_string(), Some(param))
            }
            EngineError::TooManyChoices { .. } => Self::bad_request(e.to_string(), Some(param)),
            EngineError::Stopped => Self::internal("the engine has stopped"),
            // Only starting an engine fails this way, never a submission.
            EngineError::KvCache(m) => Self::internal(m),
        }
    }

    /// 500: something failed on the server's side (the engine, a template at run time).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorResponse {
        ErrorResponse {
            error: ErrorObject {
                message: self.message.clone(),
                error_type: self.error_type.to_string(),
                param: self.param.clone(),
                code: self.code.clone(),
            },
        }
    }

    /// The error as one server-sent event, `data: {json}\n\n`, for a failure after a
    /// stream has begun (its status line is already sent).
    pub fn to_sse_event(&self) -> String {
        let json = serde_json::to_string(&self.body())
            .expect("an error body of strings always serializes");
        format!("data: {json}\n\n")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_s;
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let status = match e {
            ValidationError::ModelNotFound { .. } => StatusCode::NOT_FOUND,
            ValidationError::Invalid { .. } | ValidationError::Unsupported { .. } => {
                StatusCode::BAD_REQUEST
            }
        };
        Self::new(status, e.message())
            .with_param(Some(e.param()))
            .with_code(e.code())
    }
}

/// For handlers that take axum's `Json` extractor. axum answers 422 for a body of the
/// wrong shape; OpenAI (and so this) answers 400.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            status => status,
        };
        Self::new(status, readable_serde_error(&rejection.body_text()))
    }
}

/// Parses a request body, refusing anything but a JSON object (serde would also take a
/// struct as an array of its fields) with a 400 that says what is wrong.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        let got = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value) => value,
            Err(e) => return Err(ApiError::invalid_json(&e)),
        };
        let got = match got {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
        };
        return Err(ApiError::bad_request(
            format!("The request body must be a JSON object, but it is {got}."),
            None,
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_json(&e))
}

/// serde's message without Rust type names: "expected struct ChatCompletionRequest" and
/// "expected struct ChatCompletionRequest with 28 elements" become "expected a JSON object".
fn readable_serde_error(text: &str) -> String {
    const STRUCT: &str = "expected struct ";
    let Some(at) = text.find(STRUCT) else {
        return text.to_string();
    };
    let name = at + STRUCT.len();
    let mut rest = text[name..]
        .find(|c: char| !c.is_alphanumeric() && c != '_')
        .map_or("", |i| &text[name + i..]);
    if let Some(after) = rest.strip_prefix(" with ") {
        if let Some(end) = after.find(" elements") {
            if after[..end].chars().all(|c| c.is_ascii_digit()) {
                rest = &after[end + " elements".len()..];
            }
        }
    }
    format!("{}expected a JSON object{rest}", &text[..at])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ChatCompletionRequest;
    use serde_json::{json, Value};
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// Runs a future that needs no I/O (reading a response body already in memory).
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(x) = f.as_mut().poll(&mut cx) {
                return x;
            }
        }
    }

    fn response_json(e: ApiError) -> (StatusCode, Option<String>, Value) {
        let response = e.into_response();
        let status = response.status();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "errors are JSON"
        );
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    fn body(e: &ApiError) -> Value {
        serde_json::to_value(e.body()).unwrap()
    }

    #[test]
    fn bad_request_shape() {
        let (status, retry, json) = response_json(ApiError::bad_request(
            "Invalid 'temperature'.",
            Some("temperature"),
        ));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(retry, None);
        assert_eq!(
            json,
            json!({"error": {"message": "Invalid 'temperature'.", "type": "invalid_request_error",
                             "param": "temperature", "code": null}})
        );
        assert_eq!(
            body(&ApiError::bad_request("x", None))["error"]["param"],
            Value::Null
        );
    }

    #[test]
    fn body_field_order_is_openais() {
        let text = serde_json::to_string(&ApiError::unauthorized().body()).unwrap();
        assert_eq!(
            text,
            r#"{"error":{"message":"Missing or incorrect API key. Send it in the header 'Authorization: Bearer <key>'.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
        );
    }

    #[test]
    fn invalid_json_syntax() {
        let err = serde_json::from_str::<ChatCompletionRequest>("{\"model\": ").unwrap_err();
        let e = ApiError::invalid_json(&err);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.param, None);
        assert!(
            e.message
                .starts_with("We could not parse the JSON body of your request: EOF while parsing"),
            "{}",
            e.message
        );
        assert!(e.message.contains("line 1 column 10"), "{}", e.message);
    }

    #[test]
    fn invalid_json_wrong_shape_hides_rust_names() {
        let err = serde_json::from_str::<ChatCompletionRequest>("5").unwrap_err();
        let e = ApiError::invalid_json(&err);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "The request body is not what this endpoint expects: invalid type: integer `5`, \
             expected a JSON object at line 1 column 1."
        );
        assert_eq!(
            readable_serde_error(
                "invalid length 1, expected struct ChatCompletionRequest with 28 elements at line 1"
            ),
            "invalid length 1, expected a JSON object at line 1"
        );
        assert_eq!(
            readable_serde_error("missing field `content`"),
            "missing field `content`"
        );
    }

    #[test]
    fn parse_json_takes_only_objects() {
        let req: ChatCompletionRequest = parse_json(b" {\"model\": \"m\"}").unwrap();
        assert_eq!(req.model, Some(json!("m")));
        for (body, message) in [
            (
                &b"[1]"[..],
                "The request body must be a JSON object, but it is an array.",
            ),
            (
                b"\n\"hi\"",
                "The request body must be a JSON object, but it is a string.",
            ),
            (
                b"null",
                "The request body must be a JSON object, but it is null.",
            ),
        ] {
            let e = parse_json::<ChatCompletionRequest>(body).unwrap_err();
            assert_eq!(
                (e.status, e.message.as_str()),
                (StatusCode::BAD_REQUEST, message)
            );
        }
        for body in [&b""[..], b"{", b"[1", b"{\"model\": }"] {
            let e = parse_json::<ChatCompletionRequest>(body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.starts_with("We could not parse"), "{}", e.message);
        }
        let e = parse_json::<crate::openai::TokenizeRequest>(b"{\"content\": 5}").unwrap_err();
        assert_eq!(
            e.message,
            "The request body is not what this endpoint expects: invalid type: integer `5`, \
             expected a string at line 1 column 13."
        );
    }

    #[test]
    fn unauthorized_shape() {
        let (status, _, json) = response_json(ApiError::unauthorized());
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(json["error"]["type"], "invalid_request_error");
        assert_eq!(json["error"]["code"], "invalid_api_key");
        assert_eq!(json["error"]["param"], Value::Null);
    }

    #[test]
    fn not_found_route_shape() {
        let (status, _, json) = response_json(ApiError::not_found_route("POST /v1/nope"));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            json,
            json!({"error": {"message": "Invalid URL (POST /v1/nope).",
                             "type": "invalid_request_error", "param": null, "code": null}})
        );
    }

    #[test]
    fn model_not_found_shape() {
        let (status, _, json) = response_json(ApiError::model_not_found("gpt-4o"));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            json,
            json!({"error": {"message": "The model 'gpt-4o' does not exist.",
                             "type": "invalid_request_error", "param": "model",
                             "code": "model_not_found"}})
        );
    }

    #[test]
    fn payload_too_large_shape() {
        let (status, _, json) = response_json(ApiError::payload_too_large(1024));
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            json["error"]["message"],
            "The request body is larger than the limit of 1024 bytes."
        );
        assert_eq!(json["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn overloaded_and_loading_ask_to_retry() {
        for e in [ApiError::overloaded(), ApiError::loading()] {
            let (status, retry, json) = response_json(e);
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(retry.as_deref(), Some("1"));
            assert_eq!(json["error"]["type"], "server_error");
            assert_eq!(json["error"]["code"], Value::Null);
        }
        assert!(ApiError::loading().message.contains("loading"));
        assert!(ApiError::overloaded().message.contains("overloaded"));
    }

    #[test]
    fn context_length_exceeded_shape() {
        let (status, _, json) = response_json(ApiError::context_length_exceeded(
            "messages", 3000, None, 2048,
        ));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            json,
            json!({"error": {
                "message": "This model's maximum context length is 2048 tokens. However, you \
                            requested 3000 tokens in the messages. Please reduce the length of \
                            the messages.",
                "type": "invalid_request_error", "param": "messages",
                "code": "context_length_exceeded"}})
        );
        let e = ApiError::context_length_exceeded("prompt", 2000, Some(100), 2048);
        assert_eq!(
            e.message,
            "This model's maximum context length is 2048 tokens. However, you requested 2100 \
             tokens (2000 in the prompt, 100 in the completion). Please reduce the length of \
             the prompt or completion."
        );
        assert_eq!(e.param.as_deref(), Some("prompt"));
    }

    #[test]
    fn internal_shape() {
        let (status, retry, json) = response_json(ApiError::internal("the engine has stopped"));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(retry, None);
        assert_eq!(
            json,
            json!({"error": {"message": "the engine has stopped", "type": "server_error",
                             "param": null, "code": null}})
        );
    }

    #[test]
    fn validation_errors_keep_message_param_and_code() {
        let e: ApiError = ValidationError::Invalid {
            message: "Invalid 'temperature'.".into(),
            param: "temperature".into(),
            code: "decimal_above_max_value",
        }
        .into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body(&e),
            json!({"error": {"message": "Invalid 'temperature'.", "type": "invalid_request_error",
                             "param": "temperature", "code": "decimal_above_max_value"}})
        );
        let e: ApiError = ValidationError::Unsupported {
            message: "'tools' is not supported yet.".into(),
            param: "tools".into(),
            code: "unsupported_parameter",
        }
        .into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.param.as_deref(), Some("tools"));
        assert_eq!(e.code.as_deref(), Some("unsupported_parameter"));
        let e: ApiError = ValidationError::ModelNotFound {
            message: "The model 'x' does not exist.".into(),
            param: "model".into(),
            code: "model_not_found",
        }
        .into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.error_type, "invalid_request_error");
        assert_eq!(e.code.as_deref(), Some("model_not_found"));
    }

    #[test]
    fn sse_event_is_one_data_line() {
        let event = ApiError::internal("boom").to_sse_event();
        assert_eq!(
            event,
            "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
        );
        let tricky = ApiError::internal("line1\nline2").to_sse_event();
        assert_eq!(tricky.matches('\n').count(), 2, "newlines stay escaped");
    }

    #[test]
    fn json_rejections_become_400() {
        use axum::body::Body;
        use axum::extract::FromRequest;
        use axum::http::Request;
        let extract = |body: &'static str, content_type: &str| {
            let request = Request::builder()
                .method("POST")
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap();
            block_on(axum::Json::<ChatCompletionRequest>::from_request(
                request,
                &(),
            ))
            .err()
            .map(ApiError::from)
        };
        let e = extract("[1]", "application/json").unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "axum's 422 becomes 400");
        assert!(
            !e.message.contains("ChatCompletionRequest"),
            "{}",
            e.message
        );
        let e = extract("{", "application/json").unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.error_type, "invalid_request_error");
        let e = extract("{}", "text/plain").unwrap();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(extract("{}", "application/json").is_none());
    }

    #[test]
    fn errors_become_openai_json() {
        use crate::validate::test_support::chat;
        let e: ApiError = chat(json!({"temperature": "hot"})).unwrap_err().into();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(
            serde_json::to_value(e.body()).unwrap(),
            json!({"error": {
                "message": "Invalid type for 'temperature': expected a number, but got a string \
                            instead.",
                "type": "invalid_request_error", "param": "temperature", "code": "invalid_type"
            }})
        );
        let e: ApiError = chat(json!({"model": "other"})).unwrap_err().into();
        assert_eq!(e.status.as_u16(), 404);
        assert_eq!(e.code.as_deref(), Some("model_not_found"));
    }
}
