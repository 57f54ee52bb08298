//! How the server treats a reasoning model's thinking: the output format
//! (`--reasoning-format`), the default budget (`--reasoning-budget`), the table from
//! `reasoning_effort` to a budget (`--reasoning-effort-budgets`), and per request the
//! plan that combines them with the request's own fields.
//!
//! The splitting itself is in [`super::splitter`]; the budget is enforced by the engine
//! through [`super::ReasoningParams`].

use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// What responses show of the thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningFormat {
    /// `reasoning_content` (and `reasoning`) apart from `content`.
    #[default]
    Separated,
    /// Markers and thoughts left in `content`, as generated.
    Raw,
    /// Thinking dropped from responses (still counted in usage).
    Hidden,
}

impl ReasoningFormat {
    /// The names `--reasoning-format` takes.
    pub const NAMES: [&'static str; 3] = ["separated", "raw", "hidden"];
}

impl FromStr for ReasoningFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "separated" => Ok(ReasoningFormat::Separated),
            "raw" => Ok(ReasoningFormat::Raw),
            "hidden" => Ok(ReasoningFormat::Hidden),
            _ => Err(format!(
                "unknown reasoning format `{s}` (one of {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for ReasoningFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReasoningFormat::Separated => "separated",
            ReasoningFormat::Raw => "raw",
            ReasoningFormat::Hidden => "hidden",
        })
    }
}

/// `reasoning_effort` values, OpenAI's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
    /// The most there is: the top of the table, `xhigh`'s budget (OpenAI's spec and vLLM
    /// accept `max`).
    Max,
}

impl Effort {
    pub const NAMES: [&'static str; 6] = ["none", "minimal", "low", "medium", "high", "xhigh"];

    pub fn parse(s: &str) -> Option<Effort> {
        Some(match s {
            "none" => Effort::None,
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::Xhigh,
            "max" => Effort::Max,
            _ => return None,
        })
    }

    /// The entry of [`EffortBudgets`] that holds this effort's budget.
    fn index(self) -> usize {
        match self {
            Effort::Max => Effort::Xhigh as usize,
            e => e as usize,
        }
    }
}

/// Thinking tokens allowed for each effort; `None` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffortBudgets(pub [Option<usize>; 6]);

impl Default for EffortBudgets {
    /// none 0, minimal 256, low 1024, medium 4096, high 16384, xhigh unlimited.
    fn default() -> Self {
        EffortBudgets([
            Some(0),
            Some(256),
            Some(1024),
            Some(4096),
            Some(16384),
            None,
        ])
    }
}

impl EffortBudgets {
    pub fn get(&self, effort: Effort) -> Option<usize> {
        self.0[effort.index()]
    }
}

impl FromStr for EffortBudgets {
    type Err = String;

    /// `low=512,high=8192` (unnamed efforts keep their defaults; -1 is unlimited).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut table = EffortBudgets::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("expected EFFORT=TOKENS, got `{item}`"))?;
            let effort = Effort::parse(name.trim()).ok_or_else(|| {
                format!(
                    "unknown effort `{}` (one of {})",
                    name.trim(),
                    Effort::NAMES.join(", ")
                )
            })?;
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| format!("`{item}`: the budget must be an integer (-1: unlimited)"))?;
            table.0[effort.index()] = match n {
                -1 => None,
                n if n >= 0 => Some(n as usize),
                _ => return Err(format!("`{item}`: the budget must be >= 0, or -1")),
            };
        }
        Ok(table)
    }
}

impl fmt::Display for EffortBudgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = Effort::NAMES
            .iter()
            .zip(self.0)
            .map(|(name, b)| match b {
                Some(b) => format!("{name}={b}"),
                None => format!("{name}=-1"),
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

/// The server's reasoning settings.
#[derive(Debug, Clone, Default)]
pub struct ReasoningConfig {
    pub format: ReasoningFormat,
    /// Default thinking budget in tokens; None: unlimited.
    pub budget: Option<usize>,
    pub effort_budgets: EffortBudgets,
    /// Default lead-in written before the end marker when a budget closes the block.
    pub budget_message: Option<String>,
}

/// A chat request's reasoning fields, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReasoningRequest {
    /// `include_reasoning`.
    pub include: Option<bool>,
    pub effort: Option<Effort>,
    /// A budget under any of its names: Some(None) is unlimited (-1).
    pub budget: Option<Option<usize>>,
    pub budget_message: Option<String>,
}

/// What one request gets.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasoningPlan {
    /// Show the thinking in the response.
    pub show: bool,
    pub raw: bool,
    pub budget: Option<usize>,
    pub budget_message: Option<String>,
}

impl ReasoningConfig {
    /// Combines the server settings with a request's fields. `template_source` decides how
    /// `reasoning_effort: none` is honoured: through `enable_thinking` where the template
    /// reads it (added to `kwargs` unless the caller set it), else by a budget of 0.
    pub fn plan(
        &self,
        req: &ReasoningRequest,
        template_source: Option<&str>,
        kwargs: &mut Map<String, Value>,
    ) -> ReasoningPlan {
        let mut budget = self.budget;
        if let Some(effort) = req.effort {
            budget = self.effort_budgets.get(effort);
            let template_switch = template_source.is_some_and(|s| s.contains("enable_thinking"));
            if effort == Effort::None && template_switch && !kwargs.contains_key("enable_thinking")
            {
                kwargs.insert("enable_thinking".into(), Value::Bool(false));
            }
        }
        if let Some(b) = req.budget {
            budget = b;
        }
        ReasoningPlan {
            show: self.format != ReasoningFormat::Hidden && req.include != Some(false),
            raw: self.format == ReasoningFormat::Raw,
            budget,
            budget_message: req
                .budget_message
                .clone()
                .or_else(|| self.budget_message.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn effort_budget_table_parses_and_prints() {
        let t: EffortBudgets = "low=10, xhigh=-1,none=0".parse().unwrap();
        assert_eq!(t.get(Effort::Low), Some(10));
        assert_eq!(t.get(Effort::Medium), Some(4096));
        assert_eq!(t.get(Effort::Xhigh), None);
        let t: EffortBudgets = "xhigh=9".parse().unwrap();
        assert_eq!(t.get(Effort::Max), Some(9), "max is the top of the table");
        assert_eq!(
            EffortBudgets::default().to_string(),
            "none=0,minimal=256,low=1024,medium=4096,high=16384,xhigh=-1"
        );
        assert!("huge=1".parse::<EffortBudgets>().is_err());
        assert!("low=-2".parse::<EffortBudgets>().is_err());
        assert!("low".parse::<EffortBudgets>().is_err());
    }

    #[test]
    fn formats_parse_and_print() {
        for name in ReasoningFormat::NAMES {
            assert_eq!(name.parse::<ReasoningFormat>().unwrap().to_string(), name);
        }
        assert!("visible".parse::<ReasoningFormat>().is_err());
    }

    #[test]
    fn plan_combines_server_and_request() {
        let cfg = ReasoningConfig {
            budget: Some(100),
            ..ReasoningConfig::default()
        };
        let mut kw = Map::new();
        let plain = cfg.plan(&ReasoningRequest::default(), None, &mut kw);
        assert_eq!(
            (plain.show, plain.raw, plain.budget),
            (true, false, Some(100))
        );

        let req = ReasoningRequest {
            effort: Some(Effort::Low),
            ..ReasoningRequest::default()
        };
        assert_eq!(cfg.plan(&req, None, &mut kw).budget, Some(1024));
        let req = ReasoningRequest {
            effort: Some(Effort::Low),
            budget: Some(Some(7)),
            include: Some(false),
            ..ReasoningRequest::default()
        };
        let p = cfg.plan(&req, None, &mut kw);
        assert_eq!((p.show, p.budget), (false, Some(7)));
        assert!(kw.is_empty());

        // `none`: through the template's switch when it has one, else a zero budget.
        let none = ReasoningRequest {
            effort: Some(Effort::None),
            ..ReasoningRequest::default()
        };
        let p = cfg.plan(&none, Some("{% if enable_thinking is defined %}"), &mut kw);
        assert_eq!(kw.get("enable_thinking"), Some(&json!(false)));
        assert_eq!(p.budget, Some(0));
        let mut kw = Map::from_iter([("enable_thinking".to_string(), json!(true))]);
        cfg.plan(&none, Some("enable_thinking"), &mut kw);
        assert_eq!(kw.get("enable_thinking"), Some(&json!(true)));

        let hidden = ReasoningConfig {
            format: ReasoningFormat::Hidden,
            ..ReasoningConfig::default()
        };
        assert!(
            !hidden
                .plan(&ReasoningRequest::default(), None, &mut kw)
                .show
        );
    }
}
