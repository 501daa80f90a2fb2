//! Versioned programme templates (`workflows/templates/*.toml`).
//!
//! A template lists the standard steps of a programme and the follow-up offsets (days after the
//! return). A plan pins the name and version it was opened from, and its steps are copied into
//! the plan's own events, so publishing a new template version never rewrites a running plan.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use thiserror::Error;

use crate::ids::StepKey;
use crate::plan::{
    DueRule, Milestone, Priority, ReminderPolicy, StepDefinition, StepKind, TemplateRef,
};

/// The templates shipped with Homeward, embedded at build time.
const BUILTIN: &[(&str, &str)] = &[(
    "standard-avr-v1.toml",
    include_str!("../templates/standard-avr-v1.toml"),
)];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("template {file}: {message}")]
    Invalid { file: String, message: String },
    #[error("no template '{name}' version {version}")]
    NotFound { name: String, version: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    pub version: u32,
    pub title: String,
    /// Follow-up visits, in days after arrival. Each becomes a `follow_up_<n>` step.
    #[serde(default)]
    pub follow_up_offsets_days: Vec<u32>,
    pub steps: Vec<TemplateStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateStep {
    pub key: StepKey,
    pub kind: StepKind,
    pub title: String,
    #[serde(default = "normal")]
    pub priority: Priority,
    #[serde(default)]
    pub depends_on: Vec<StepKey>,
    /// Due this many days after the plan is opened.
    pub due_days_after_opening: Option<u32>,
    /// Due this many days after the survivor's arrival.
    pub due_days_after_arrival: Option<u32>,
    pub candidate_group: Option<String>,
}

fn normal() -> Priority {
    Priority::Normal
}

impl Template {
    /// Parses and checks a template: unique keys, known dependencies, no cycles.
    pub fn parse(file: &str, source: &str) -> Result<Self, TemplateError> {
        let invalid = |message: String| TemplateError::Invalid {
            file: file.to_owned(),
            message,
        };
        let template: Template = toml::from_str(source).map_err(|e| invalid(e.to_string()))?;
        let mut keys = HashSet::new();
        for step in &template.steps {
            if !keys.insert(&step.key) {
                return Err(invalid(format!("step '{}' appears twice", step.key)));
            }
            if step.key.as_str().starts_with("follow_up_") {
                return Err(invalid(format!(
                    "step '{}': the follow_up_ prefix is reserved for follow-up visits",
                    step.key
                )));
            }
            if step.due_days_after_opening.is_some() && step.due_days_after_arrival.is_some() {
                return Err(invalid(format!("step '{}' has two due rules", step.key)));
            }
        }
        for step in &template.steps {
            for dep in &step.depends_on {
                if !keys.contains(dep) {
                    return Err(invalid(format!(
                        "step '{}' depends on unknown step '{dep}'",
                        step.key
                    )));
                }
            }
        }
        if let Some(key) = find_cycle(
            template
                .steps
                .iter()
                .map(|s| (&s.key, s.depends_on.as_slice())),
        ) {
            return Err(invalid(format!("dependency cycle through step '{key}'")));
        }
        Ok(template)
    }

    pub fn reference(&self) -> TemplateRef {
        TemplateRef {
            name: self.name.clone(),
            version: self.version,
        }
    }

    /// The steps a plan opened from this template starts with, follow-ups included.
    pub fn step_definitions(&self, follow_up_offsets_days: &[u32]) -> Vec<StepDefinition> {
        let mut steps: Vec<StepDefinition> = self
            .steps
            .iter()
            .map(|s| StepDefinition {
                key: s.key.clone(),
                kind: s.kind,
                title: s.title.clone().into(),
                assignee: None,
                candidate_group: s.candidate_group.clone(),
                priority: s.priority,
                due: match (s.due_days_after_opening, s.due_days_after_arrival) {
                    (Some(days), _) => Some(DueRule::After {
                        milestone: Milestone::PlanOpened,
                        days,
                    }),
                    (None, Some(days)) => Some(DueRule::After {
                        milestone: Milestone::Arrival,
                        days,
                    }),
                    (None, None) => None,
                },
                follow_up_on: None,
                depends_on: s.depends_on.clone(),
                reminder_policy: ReminderPolicy::default(),
            })
            .collect();
        // Follow-ups wait for the travel steps: they happen after the return.
        let travel: Vec<StepKey> = self
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Travel)
            .map(|s| s.key.clone())
            .collect();
        for (i, days) in follow_up_offsets_days.iter().enumerate() {
            steps.push(StepDefinition {
                key: StepKey::parse(&format!("follow_up_{}", i + 1))
                    .expect("follow_up_<n> is a valid step key"),
                kind: StepKind::FollowUp,
                title: format!("Follow-up visit {} ({days} days after return)", i + 1).into(),
                assignee: None,
                candidate_group: Some("partner".to_owned()),
                priority: Priority::Normal,
                due: Some(DueRule::After {
                    milestone: Milestone::Arrival,
                    days: *days,
                }),
                follow_up_on: None,
                depends_on: travel.clone(),
                reminder_policy: ReminderPolicy::default(),
            });
        }
        steps
    }
}

/// All built-in templates, parsed. A broken built-in template is a build defect, caught by tests.
pub fn builtin() -> Vec<Template> {
    BUILTIN
        .iter()
        .map(|(file, src)| Template::parse(file, src).expect("built-in templates are valid"))
        .collect()
}

/// The title a plan's template gives its step `key` of `kind`: safe to show anywhere (an email, a
/// partner's page), unlike a title a social worker wrote for one survivor. `None` for a step
/// the template does not have (a custom step): name it by its kind instead.
pub fn template_title(template: &TemplateRef, key: &StepKey, kind: StepKind) -> Option<String> {
    static PARSED: std::sync::LazyLock<Vec<Template>> = std::sync::LazyLock::new(builtin);
    let found = PARSED
        .iter()
        .find(|t| t.name == template.name && t.version == template.version)?;
    if kind == StepKind::FollowUp && !found.follow_up_offsets_days.is_empty() {
        let n: usize = key.as_str().strip_prefix("follow_up_")?.parse().ok()?;
        return (n >= 1).then(|| format!("Follow-up visit {n}"));
    }
    found
        .steps
        .iter()
        .find(|s| &s.key == key && s.kind == kind)
        .map(|s| s.title.clone())
}

/// Finds a built-in template by name and version.
pub fn find(name: &str, version: u32) -> Result<Template, TemplateError> {
    builtin()
        .into_iter()
        .find(|t| t.name == name && t.version == version)
        .ok_or_else(|| TemplateError::NotFound {
            name: name.chars().take(100).collect(),
            version,
        })
}

/// Returns a step on a dependency cycle, if the graph (step → the steps it depends on) has one.
/// Dependencies on unknown steps are ignored here; callers check those separately.
/// Deterministic: steps are visited in key order, so the same graph always names the same step.
pub fn find_cycle<'a, D>(graph: impl IntoIterator<Item = (&'a StepKey, D)>) -> Option<StepKey>
where
    D: AsRef<[StepKey]>,
{
    let graph: BTreeMap<&StepKey, D> = graph.into_iter().collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut mark: BTreeMap<&StepKey, u8> = BTreeMap::new();
    for &start in graph.keys() {
        if mark.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        // Iterative DFS: (node, index of the next dependency to visit).
        let mut stack: Vec<(&StepKey, usize)> = vec![(start, 0)];
        mark.insert(start, 1);
        while let Some((node, i)) = stack.pop() {
            let deps = graph.get(node).map(|d| d.as_ref()).unwrap_or(&[]);
            if let Some(dep) = deps.get(i) {
                stack.push((node, i + 1));
                match mark.get(dep).copied().unwrap_or(0) {
                    1 => return Some(dep.clone()),
                    0 if graph.contains_key(dep) => {
                        mark.insert(dep, 1);
                        stack.push((dep, 0));
                    }
                    _ => {}
                }
            } else {
                mark.insert(node, 2);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_step_has_a_title_to_show_and_a_custom_one_has_none() {
        let standard = find("standard-avr", 1).unwrap().reference();
        let first = &find("standard-avr", 1).unwrap().steps[0];
        assert_eq!(
            template_title(&standard, &first.key, first.kind).as_deref(),
            Some(first.title.as_str())
        );
        let counselling = StepKey::parse("counselling").unwrap();
        assert_eq!(
            template_title(&standard, &counselling, StepKind::Medical),
            None
        );
        // The template's key with another kind is another step.
        let other_kind = if first.kind == StepKind::Legal {
            StepKind::Medical
        } else {
            StepKind::Legal
        };
        assert_eq!(template_title(&standard, &first.key, other_kind), None);
        let visit = StepKey::parse("follow_up_2").unwrap();
        assert_eq!(
            template_title(&standard, &visit, StepKind::FollowUp).as_deref(),
            Some("Follow-up visit 2")
        );
    }

    #[test]
    fn the_standard_template_loads_with_its_follow_ups() {
        let t = find("standard-avr", 1).expect("the built-in template");
        let steps = t.step_definitions(&t.follow_up_offsets_days);
        assert!(steps.iter().any(|s| s.kind == StepKind::OriginContact));
        assert!(steps.iter().any(|s| s.kind == StepKind::TravelDocument));
        let follow_ups: Vec<_> = steps
            .iter()
            .filter(|s| s.kind == StepKind::FollowUp)
            .collect();
        assert_eq!(follow_ups.len(), t.follow_up_offsets_days.len());
        assert!(follow_ups.iter().all(|s| matches!(
            s.due,
            Some(DueRule::After {
                milestone: Milestone::Arrival,
                ..
            })
        )));
    }

    #[test]
    fn a_template_with_a_cycle_is_rejected() {
        let src = r#"
            name = "loop"
            version = 1
            title = "Loop"
            [[steps]]
            key = "a"
            kind = "custom"
            title = "A"
            depends_on = ["b"]
            [[steps]]
            key = "b"
            kind = "custom"
            title = "B"
            depends_on = ["a"]
        "#;
        let err = Template::parse("loop.toml", src).expect_err("a cycle");
        assert!(err.to_string().contains("dependency cycle"), "{err}");
    }

    #[test]
    fn a_template_with_an_unknown_dependency_is_rejected() {
        let src = r#"
            name = "x"
            version = 1
            title = "X"
            [[steps]]
            key = "a"
            kind = "custom"
            title = "A"
            depends_on = ["nope"]
        "#;
        let err = Template::parse("x.toml", src).expect_err("an unknown dependency");
        assert!(err.to_string().contains("unknown step 'nope'"), "{err}");
    }

    #[test]
    fn cycle_detection_finds_long_cycles_and_accepts_dags() {
        let k = |s: &str| StepKey::parse(s).expect("a valid key");
        let (a, b, c, d) = (k("a"), k("b"), k("c"), k("d"));
        let dag = vec![
            (&a, vec![b.clone(), c.clone()]),
            (&b, vec![c.clone()]),
            (&c, vec![]),
            (&d, vec![a.clone()]),
        ];
        assert_eq!(find_cycle(dag), None);
        let cyclic = vec![
            (&a, vec![b.clone()]),
            (&b, vec![c.clone()]),
            (&c, vec![a.clone()]),
        ];
        assert!(find_cycle(cyclic).is_some());
    }
}
