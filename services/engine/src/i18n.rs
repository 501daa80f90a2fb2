//! The words Homeward writes for people, in their language: one Fluent catalogue per language
//! (`locales/en.ftl`, `fr.ftl`, `es.ftl` at the top of the repository), compiled into the binary.
//! Emails, the pages behind partner links and the web console take their text from here; the
//! templates lay it out.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::{langid, LanguageIdentifier};

/// The languages Homeward writes in; any other gets English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
    Es,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Fr, Lang::Es];

    /// The language for a BCP 47 tag: only the primary language counts (`fr-CA` is French).
    pub fn of(tag: &str) -> Self {
        match tag
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "fr" => Self::Fr,
            "es" => Self::Es,
            _ => Self::En,
        }
    }

    /// For `<html lang="...">`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
            Lang::Es => "es",
        }
    }

    /// The message `id` in this language.
    pub fn text(self, id: &str) -> String {
        CATALOGUES.text(self, id, None)
    }

    /// Whether the catalogue has the message `id`.
    pub fn has(self, id: &str) -> bool {
        CATALOGUES.bundles[self as usize].has_message(id)
    }

    /// The message `id` in this language, with its variables.
    pub fn text_with<'a>(self, id: &str, args: &[(&'a str, FluentValue<'a>)]) -> String {
        let mut fluent = FluentArgs::new();
        for (name, value) in args {
            fluent.set(*name, value.clone());
        }
        CATALOGUES.text(self, id, Some(&fluent))
    }
}

/// The catalogues' sources, in the order of [`Lang::ALL`].
pub const SOURCES: [&str; 3] = [
    include_str!("../../../locales/en.ftl"),
    include_str!("../../../locales/fr.ftl"),
    include_str!("../../../locales/es.ftl"),
];

struct Catalogues {
    bundles: Vec<FluentBundle<FluentResource>>,
}

static CATALOGUES: LazyLock<Catalogues> = LazyLock::new(|| {
    let ids: [LanguageIdentifier; 3] = [langid!("en"), langid!("fr"), langid!("es")];
    let bundles = ids
        .into_iter()
        .zip(SOURCES)
        .map(|(id, source)| {
            let resource = FluentResource::try_new(source.to_owned())
                .unwrap_or_else(|(_, errors)| panic!("catalogue {id} does not parse: {errors:?}"));
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Plain text for emails and pages, without bidi isolation marks around variables.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .unwrap_or_else(|errors| panic!("catalogue {errors:?}"));
            bundle
        })
        .collect();
    Catalogues { bundles }
});

impl Catalogues {
    fn text(&self, lang: Lang, id: &str, args: Option<&FluentArgs>) -> String {
        let bundle = &self.bundles[lang as usize];
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::error!(id, lang = lang.code(), "no such message in the catalogue");
            return id.to_owned();
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::error!(
                id,
                lang = lang.code(),
                ?errors,
                "message formatted with errors"
            );
        }
        text.into_owned()
    }
}

/// How emails, partner pages and calendar files name a step: by its template's title (in `lang`
/// where the catalogue has it), or, for a step a social worker added, by its kind in `lang`;
/// never by a title written for one survivor.
pub fn step_name(
    template: &homeward_workflows::plan::TemplateRef,
    key: &homeward_workflows::StepKey,
    kind: homeward_workflows::plan::StepKind,
    lang: Lang,
) -> String {
    match homeward_workflows::template::template_title(template, key, kind) {
        Some(title) => {
            if kind == homeward_workflows::plan::StepKind::FollowUp {
                // "Follow-up visit 2", as the template names each visit.
                if let Some(n) = title
                    .strip_prefix("Follow-up visit ")
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    return lang.text_with("template-follow-up-short", &[("count", n.into())]);
                }
            }
            catalogue_title(template, key, lang).unwrap_or(title)
        }
        None => lang.text(&format!("step-kind-{}", kind.as_str().replace('_', "-"))),
    }
}

/// A template step's title in `lang`, while it is still the template's own (`title` as the
/// plan holds it); a title a social worker wrote or changed is shown as written: none then.
pub fn template_step_title(
    template: &homeward_workflows::plan::TemplateRef,
    key: &homeward_workflows::StepKey,
    kind: homeward_workflows::plan::StepKind,
    title: &str,
    lang: Lang,
) -> Option<String> {
    let original = homeward_workflows::template::template_title(template, key, kind)?;
    if kind == homeward_workflows::plan::StepKind::FollowUp {
        // "Follow-up visit 2 (90 days after return)", as the template writes each visit.
        let days: u32 = title
            .strip_prefix(&format!("{original} ("))?
            .strip_suffix(" days after return)")?
            .parse()
            .ok()?;
        let n: u32 = original.strip_prefix("Follow-up visit ")?.parse().ok()?;
        return Some(lang.text_with(
            "template-follow-up",
            &[("count", n.into()), ("days", days.into())],
        ));
    }
    if original != title {
        return None;
    }
    catalogue_title(template, key, lang)
}

/// A template step's title as the catalogue gives it in `lang` (`template-<name>-<key>`), if
/// it has one.
fn catalogue_title(
    template: &homeward_workflows::plan::TemplateRef,
    key: &homeward_workflows::StepKey,
    lang: Lang,
) -> Option<String> {
    let id = format!("template-{}-{}", template.name, key.as_str());
    lang.has(&id).then(|| lang.text(&id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ids(source: &str) -> BTreeSet<String> {
        FluentResource::try_new(source.to_owned())
            .expect("parses")
            .entries()
            .filter_map(|entry| match entry {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_catalogue_has_the_same_messages() {
        let english = ids(SOURCES[0]);
        assert!(english.len() > 50, "{english:?}");
        for (lang, source) in Lang::ALL.iter().zip(SOURCES).skip(1) {
            assert_eq!(ids(source), english, "{lang:?}");
        }
    }

    #[test]
    fn every_message_formats_without_error_in_every_language() {
        // Every variable a message may use; a misspelt one is an error.
        let mut args = FluentArgs::new();
        for name in [
            "name",
            "reference",
            "title",
            "due",
            "when",
            "admin",
            "old",
            "new",
            "organisation",
            "expires",
            "role",
            "email",
            "date",
            "from",
            "to",
            "message",
            "reason",
            "zone",
        ] {
            args.set(name, "x");
        }
        for name in [
            "days", "open", "overdue", "count", "minutes", "seconds", "steps", "done", "max",
        ] {
            args.set(name, 2);
        }
        for lang in Lang::ALL {
            let bundle = &CATALOGUES.bundles[lang as usize];
            for id in ids(SOURCES[0]) {
                let pattern = bundle.get_message(&id).and_then(|m| m.value()).unwrap();
                let mut errors = Vec::new();
                bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty(), "{lang:?} {id}: {errors:?}");
            }
        }
    }

    #[test]
    fn a_custom_step_is_named_by_its_kind_in_the_readers_language() {
        use homeward_workflows::plan::{StepKind, TemplateRef};
        let standard = TemplateRef {
            name: "standard-avr".into(),
            version: 1,
        };
        let key = homeward_workflows::StepKey::parse("counselling").unwrap();
        assert_eq!(
            step_name(&standard, &key, StepKind::Medical, Lang::En),
            "Medical care"
        );
        assert_eq!(
            step_name(&standard, &key, StepKind::Medical, Lang::Fr),
            "Soins médicaux"
        );
        for kind in [
            StepKind::TravelDocument,
            StepKind::Travel,
            StepKind::FamilyMediation,
            StepKind::OriginContact,
            StepKind::FollowUp,
            StepKind::Medical,
            StepKind::Legal,
            StepKind::ReintegrationSupport,
            StepKind::Custom,
        ] {
            for lang in Lang::ALL {
                let name = step_name(&standard, &key, kind, lang);
                assert!(!name.starts_with("step-kind"), "{kind:?} {lang:?}: {name}");
            }
        }
    }

    #[test]
    fn a_template_steps_title_is_in_the_readers_language_until_someone_rewrites_it() {
        use homeward_workflows::plan::{StepKind, TemplateRef};
        let standard = TemplateRef {
            name: "standard-avr".into(),
            version: 1,
        };
        let key = |k: &str| homeward_workflows::StepKey::parse(k).unwrap();
        let template = homeward_workflows::template::find("standard-avr", 1).unwrap();
        for step in &template.steps {
            for lang in Lang::ALL {
                let title =
                    template_step_title(&standard, &step.key, step.kind, step.title.as_ref(), lang);
                assert!(title.is_some(), "{} in {lang:?}", step.key.as_str());
            }
        }
        assert_eq!(
            template_step_title(
                &standard,
                &key("passport"),
                StepKind::TravelDocument,
                "Obtain a passport or laissez-passer",
                Lang::Fr
            )
            .as_deref(),
            Some("Obtenir un passeport ou un laissez-passer")
        );
        assert_eq!(
            template_step_title(
                &standard,
                &key("follow_up_2"),
                StepKind::FollowUp,
                "Follow-up visit 2 (90 days after return)",
                Lang::Es
            )
            .as_deref(),
            Some("Visita de seguimiento 2 (90 días después del regreso)")
        );
        // Her own words stay hers.
        assert_eq!(
            template_step_title(
                &standard,
                &key("passport"),
                StepKind::TravelDocument,
                "Passport from the Lagos office",
                Lang::Fr
            ),
            None
        );
    }

    #[test]
    fn emails_name_a_template_step_in_the_readers_language() {
        use homeward_workflows::plan::{StepKind, TemplateRef};
        let standard = TemplateRef {
            name: "standard-avr".into(),
            version: 1,
        };
        let key = |k: &str| homeward_workflows::StepKey::parse(k).unwrap();
        assert_eq!(
            step_name(
                &standard,
                &key("passport"),
                StepKind::TravelDocument,
                Lang::Fr
            ),
            "Obtenir un passeport ou un laissez-passer"
        );
        assert_eq!(
            step_name(
                &standard,
                &key("passport"),
                StepKind::TravelDocument,
                Lang::En
            ),
            "Obtain a passport or laissez-passer"
        );
        assert_eq!(
            step_name(&standard, &key("follow_up_3"), StepKind::FollowUp, Lang::Es),
            "Visita de seguimiento 3"
        );
    }

    #[test]
    fn counts_choose_their_form_and_other_tags_get_english() {
        let days = |lang: Lang, n: i64| {
            lang.text_with(
                "reminder-overdue-line",
                &[
                    ("title", "T".into()),
                    ("due", "D".into()),
                    ("days", n.into()),
                ],
            )
        };
        assert_eq!(
            days(Lang::En, 1),
            "The step \"T\" was due on D: one day ago."
        );
        assert_eq!(
            days(Lang::En, 10),
            "The step \"T\" was due on D: 10 days ago."
        );
        assert_eq!(
            days(Lang::Fr, 0),
            "L'étape « T » devait être faite le D, il y a 0 jours."
        );
        assert_eq!(days(Lang::Es, 1), "El paso «T» vencía el D, hace un día.");
        assert_eq!(Lang::of("fr-CA"), Lang::Fr);
        assert_eq!(Lang::of("yo"), Lang::En);
    }
}
