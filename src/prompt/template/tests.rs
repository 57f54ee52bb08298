//! Tests of the chat templates: real templates rendered against what transformers renders.

use serde_json::json;

use super::*;

fn render(source: &str, messages: Value, opts: &RenderOptions) -> Result<String, TemplateError> {
    let template = ChatTemplate::new(source, Some("<s>"), Some("</s>"))?;
    let messages = messages
        .as_array()
        .expect("test messages are a list")
        .clone();
    template.render(&messages, opts)
}

fn render_plain(source: &str) -> Result<String, TemplateError> {
    render(
        source,
        json!([{"role": "user", "content": "hi"}]),
        &RenderOptions::default(),
    )
}

#[test]
fn raise_exception_fails_with_the_message() {
    let err = render_plain("{% if true %}{{ raise_exception('Roles must alternate') }}{% endif %}")
        .unwrap_err();
    match &err {
        TemplateError::Raised(message) => assert_eq!(message, "Roles must alternate"),
        other => panic!("expected Raised, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the chat template rejected the conversation: Roles must alternate"
    );
}

#[test]
fn raise_exception_inside_a_macro_is_still_raised() {
    let source = "{% macro check(m) %}{{ raise_exception('bad role ' + m.role) }}{% endmacro %}\
                  {% for m in messages %}{{ check(m) }}{% endfor %}";
    match render_plain(source) {
        Err(TemplateError::Raised(message)) => assert_eq!(message, "bad role user"),
        other => panic!("expected Raised, got {other:?}"),
    }
}

#[test]
fn tojson_spaces_like_python_json_dumps() {
    let opts = RenderOptions {
        kwargs: json!({"x": {"b": [1, 2.5, true, null], "a": "<é\"\n>", "c": {}, "d": []}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..RenderOptions::default()
    };
    let cases = [
        (
            "{{ x | tojson }}",
            r#"{"b": [1, 2.5, true, null], "a": "<é\"\n>", "c": {}, "d": []}"#,
        ),
        (
            "{{ x | tojson(sort_keys=true) }}",
            r#"{"a": "<é\"\n>", "b": [1, 2.5, true, null], "c": {}, "d": []}"#,
        ),
        (
            "{{ x | tojson(separators=(',', ':')) }}",
            r#"{"b":[1,2.5,true,null],"a":"<é\"\n>","c":{},"d":[]}"#,
        ),
        (
            "{{ x | tojson(ensure_ascii=true) }}",
            r#"{"b": [1, 2.5, true, null], "a": "<\u00e9\"\n>", "c": {}, "d": []}"#,
        ),
        (
            "{{ x.b | tojson(indent=2) }}",
            "[\n  1,\n  2.5,\n  true,\n  null\n]",
        ),
        (
            "{{ x | tojson(indent=1) }}",
            "{\n \"b\": [\n  1,\n  2.5,\n  true,\n  null\n ],\n \"a\": \"<é\\\"\\n>\",\n \"c\": {},\n \"d\": []\n}",
        ),
        ("{{ 'a\\tb\\x01' | tojson }}", r#""a\tb\u0001""#),
        ("{{ 1e-05 | tojson }}", "1e-05"),
    ];
    for (source, expected) in cases {
        let got = render(source, json!([{"role": "user", "content": "hi"}]), &opts)
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(got, expected, "{source}");
    }
}

#[test]
fn tojson_of_an_undefined_value_is_an_error() {
    let err = render_plain("{{ messages[0].missing | tojson }}").unwrap_err();
    assert!(
        matches!(err, TemplateError::Render { line: Some(1), .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("undefined"), "{err}");
}

#[test]
fn slicing_and_negative_indexes_work_like_python() {
    let messages = json!([
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"}
    ]);
    let cases = [
        (
            "{% for m in messages[::-1] %}{{ m.content }},{% endfor %}",
            "u2,a1,u1,s,",
        ),
        (
            "{% for m in messages[1:] %}{{ m.content }},{% endfor %}",
            "u1,a1,u2,",
        ),
        (
            "{% for m in messages[:-1] %}{{ m.content }},{% endfor %}",
            "s,u1,a1,",
        ),
        (
            "{% for m in messages[::2] %}{{ m.content }},{% endfor %}",
            "s,a1,",
        ),
        ("{{ messages[-1].content }}", "u2"),
        ("{{ 'a</think>b'.split('</think>')[-1] }}", "b"),
        ("{{ 'abcdef'[1:-1] }}", "bcde"),
    ];
    for (source, expected) in cases {
        let got = render(source, messages.clone(), &RenderOptions::default())
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(got, expected, "{source}");
    }
}

#[test]
fn python_string_and_dict_methods_are_available() {
    let source = "{{ '  Hi There  '.strip() }}|{{ 'xxhixx'.lstrip('x') }}|{{ 'hi\\n\\n'.rstrip('\\n') }}|\
                  {{ 'a,b'.split(',') | length }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith('bc') }}|\
                  {{ 'abc'.replace('b', 'B') }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|\
                  {% for k, v in messages[0].items() %}{{ k }}={{ v }};{% endfor %}|\
                  {{ messages[0].get('name', 'anon') }}|{{ messages[0] is mapping }}|\
                  {{ messages[0].content is string }}|{{ none }}|{{ 1.0 }}|{{ ['a', 1] }}";
    let got = render_plain(source).unwrap();
    assert_eq!(
        got,
        "Hi There|hixx|hi|2|True|True|aBc|ABab|role=user;content=hi;|anon|True|True|None|1.0|['a', 1]"
    );
}

#[test]
fn tojson_takes_python_positional_arguments() {
    // json.dumps's order: ensure_ascii, indent, separators, sort_keys.
    let opts = RenderOptions {
        kwargs: json!({"x": {"b": "é", "a": [1]}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..RenderOptions::default()
    };
    let source = "{{ x | tojson(false, 2) }}|{{ x | tojson(true, none, (',', ':'), true) }}";
    let got = render(source, json!([{"role": "user", "content": "hi"}]), &opts).unwrap();
    assert_eq!(
        got,
        "{\n  \"b\": \"é\",\n  \"a\": [\n    1\n  ]\n}|{\"a\":[1],\"b\":\"\\u00e9\"}"
    );
}

#[test]
fn printed_values_look_like_python() {
    let source =
        "{{ 1e16 }}|{{ [1.5, none, true, {'k': \"it's\"}] }}|{{ 'a' ~ 1.0 ~ true ~ none }}";
    assert_eq!(
        render_plain(source).unwrap(),
        "1e+16|[1.5, None, True, {'k': \"it's\"}]|a1.0TrueNone"
    );
}

#[test]
fn generation_tags_render_their_body() {
    // Expected outputs are transformers' for the same templates and messages.
    let messages = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"}
    ]);
    let cases = [
        (
            "{% for m in messages %}\n  {% if m.role == 'assistant' %}\n  {% generation %}\n[{{ m.content }}]\n  {% endgeneration %}\n  {% else %}\n<{{ m.content }}>\n  {% endif %}\n{% endfor %}\n",
            "<hi>\n[yo]\n",
        ),
        (
            "{%- for m in messages %} {%- generation -%}  [{{ m.content }}]  {%- endgeneration +%}  x{%+ generation %}  y {%endgeneration%}\n{% endfor %}",
            "[hi]  x  y [yo]  x  y ",
        ),
    ];
    for (source, expected) in cases {
        let got = render(source, messages.clone(), &RenderOptions::default())
            .unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(got, expected, "{source}");
    }
    // Only whole tags are rewritten.
    assert_eq!(
        without_generation_tags("{{ generation }}{% set generations = 1 %}{%- generation%}"),
        "{{ generation }}{% set generations = 1 %}{%- if true%}"
    );
}

#[test]
fn namespace_carries_values_out_of_a_loop() {
    let source = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}";
    assert_eq!(render_plain(source).unwrap(), "1");
}

#[test]
fn strftime_now_formats_the_current_date() {
    let got = render_plain("{{ strftime_now('%Y-%m-%d') }}").unwrap();
    let year: i32 = got[..4].parse().unwrap();
    assert!(year >= 2024, "{got}");
    assert_eq!(got.len(), 10, "{got}");
}

#[test]
fn syntax_error_names_the_line() {
    let err = ChatTemplate::new(
        "{% for m in messages %}\n{{ m.content }\n{% endfor %}",
        None,
        None,
    )
    .unwrap_err();
    match &err {
        TemplateError::Syntax { line, message } => {
            assert_eq!(*line, 2, "{message}");
            assert!(message.contains("syntax error"), "{message}");
        }
        other => panic!("expected Syntax, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("chat template syntax error at line 2: "),
        "{err}"
    );
}

#[test]
fn trims_blocks_like_transformers() {
    // trim_blocks eats the newline after a tag, lstrip_blocks the indentation before it, and
    // the template's final newline is dropped.
    let source = "{% for m in messages %}\n    {% if true %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}\n";
    assert_eq!(render_plain(source).unwrap(), "[hi]\n");
}

#[test]
fn special_tokens_are_variables_and_kwargs_override_them() {
    let source =
        "{{ bos_token }}|{{ eos_token }}|{{ enable_thinking }}|{{ tools }}|{{ documents }}";
    assert_eq!(render_plain(source).unwrap(), "<s>|</s>||None|None");
    let opts = RenderOptions {
        kwargs: json!({"bos_token": "<bos>", "enable_thinking": false})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..RenderOptions::default()
    };
    let got = render(source, json!([{"role": "user", "content": "hi"}]), &opts).unwrap();
    assert_eq!(got, "<bos>|</s>|False|None|None");
    let template = ChatTemplate::new(source, None, None).unwrap();
    let got = template.render(
        &[json!({"role": "user", "content": "hi"})],
        &RenderOptions::default(),
    );
    assert_eq!(got.unwrap(), "|||None|None");
}

#[test]
fn reserved_kwargs_are_refused() {
    let opts = RenderOptions {
        kwargs: json!({"messages": []})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..RenderOptions::default()
    };
    let err = render("x", json!([{"role": "user", "content": "hi"}]), &opts).unwrap_err();
    assert!(
        matches!(err, TemplateError::ReservedKwarg(ref name) if name == "messages"),
        "{err:?}"
    );
}

#[test]
fn messages_are_normalized_like_transformers() {
    let source = "{% for m in messages %}{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}{{ '\\n' }}{% endfor %}";
    let messages = json!([
        {"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]},
        {"role": "assistant", "content": "a", "reasoning": "r"},
        {"role": "assistant", "content": "a", "reasoning_content": "r1", "thinking": "t"}
    ]);
    let got = render(source, messages, &RenderOptions::default()).unwrap();
    assert_eq!(
        got,
        "role=assistant;tool_calls=[{'id': '1'}];\n\
         thinking=r;role=assistant;content=a;reasoning=r;reasoning_content=r;\n\
         thinking=t;role=assistant;content=a;reasoning_content=r1;\n"
    );
}

#[test]
fn bad_conversations_are_refused() {
    let template = ChatTemplate::new("x", None, None).unwrap();
    let opts = RenderOptions::default();
    assert!(matches!(
        template.render(&[], &opts),
        Err(TemplateError::NoMessages)
    ));
    assert!(matches!(
        template.render(&[json!({"role": "user"}), json!("hi")], &opts),
        Err(TemplateError::InvalidMessage { index: 1 })
    ));
}

#[test]
fn config_template_may_be_a_named_list() {
    assert_eq!(template_from_config(&json!("{{ x }}")).unwrap(), "{{ x }}");
    let list = json!([{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]);
    assert_eq!(template_from_config(&list).unwrap(), "D");
    let err = template_from_config(&json!([{"name": "rag", "template": "R"}])).unwrap_err();
    assert!(err.to_string().contains("\"default\""), "{err}");
    assert!(template_from_config(&json!(3)).is_err());
}

#[test]
fn builtins_are_chosen_by_architecture_then_vocabulary() {
    let vocab = |tokens: &'static [&'static str]| move |t: &str| tokens.contains(&t);
    let llama3 = vocab(&["<|start_header_id|>", "<|eot_id|>"]);
    let chatml = vocab(&["<|im_start|>", "<|im_end|>"]);
    let family = |source: Option<TemplateSource>| match source {
        Some(TemplateSource::Builtin { family, .. }) => Some(family),
        _ => None,
    };
    assert_eq!(
        family(builtin_for_model("gemma3", vocab(&[]))),
        Some(TemplateFamily::Gemma)
    );
    assert_eq!(
        family(builtin_for_model("gemma2", vocab(&[]))),
        Some(TemplateFamily::Gemma)
    );
    assert_eq!(
        family(builtin_for_model("gemma", vocab(&[]))),
        Some(TemplateFamily::Gemma)
    );
    assert_eq!(
        family(builtin_for_model("llama", llama3)),
        Some(TemplateFamily::Llama3)
    );
    assert_eq!(
        family(builtin_for_model("llama", chatml)),
        Some(TemplateFamily::ChatMl)
    );
    assert_eq!(family(builtin_for_model("llama", vocab(&["<s>"]))), None);
    assert_eq!(
        family(builtin_for_model("qwen2", vocab(&[]))),
        Some(TemplateFamily::ChatMl)
    );
    assert_eq!(
        family(builtin_for_model("qwen3", vocab(&[]))),
        Some(TemplateFamily::ChatMl)
    );
    assert_eq!(family(builtin_for_model("mistral", vocab(&[]))), None);

    let source = builtin_for_model("llama", llama3).unwrap();
    assert_eq!(
        source.to_string(),
        "built-in Llama 3 chat template (the model file carries none; architecture `llama` \
         with Llama 3's <|start_header_id|> and <|eot_id|> tokens)"
    );
    let provided = TemplateSource::Provided {
        origin: "GGUF metadata tokenizer.chat_template".to_string(),
    };
    assert_eq!(
        provided.to_string(),
        "chat template from GGUF metadata tokenizer.chat_template"
    );
}

#[test]
fn builtins_compile() {
    for family in [
        TemplateFamily::Gemma,
        TemplateFamily::Llama3,
        TemplateFamily::ChatMl,
    ] {
        let template = ChatTemplate::builtin(family, Some("<s>"), None).unwrap();
        assert_eq!(template.source(), family.source());
    }
}

#[test]
fn chat_template_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ChatTemplate>();
}

#[test]
fn content_parts_are_joined_for_templates_that_take_strings() {
    let messages = vec![
        json!({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
        json!({"role": "assistant", "content": null, "tool_calls": []}),
        json!({"role": "tool", "content": "t"}),
    ];
    let plain = ChatTemplate::new(
        "{% for m in messages %}{{ m['role'] + ':' + m['content'] }};{% endfor %}",
        None,
        None,
    )
    .unwrap();
    assert!(!plain.takes_content_parts());
    let prepared = plain.prepare_messages(&messages);
    assert_eq!(prepared[0]["content"], "a\nb");
    assert_eq!(prepared[1]["content"], "");
    assert_eq!(
        plain.render(&prepared, &RenderOptions::default()).unwrap(),
        "user:a\nb;assistant:;tool:t;"
    );
    let gemma_like = ChatTemplate::new(
        "{% for message in messages %}{%- for item in message['content'] -%}{{ item['text'] }}{%- endfor -%}{% endfor %}",
        None,
        None,
    )
    .unwrap();
    assert!(gemma_like.takes_content_parts());
    assert_eq!(gemma_like.prepare_messages(&messages), messages);
    assert_eq!(
        gemma_like
            .render(&messages[..1], &RenderOptions::default())
            .unwrap(),
        "ab"
    );
}
