//! Automatic meta-tags: keywords of a session's text, by RAKE or by asking the model.
//!
//! RAKE (Rapid Automatic Keyword Extraction, Rose et al. 2010) splits the text into
//! candidate phrases at stop words and punctuation and scores each word by its degree over
//! its frequency; a phrase scores the sum of its words. Tags are the best phrases of one to
//! three words, lowercased, without numbers or very short words. It needs no model, so it
//! runs after every tagging exchange in a few milliseconds.

use std::collections::HashSet;
use std::sync::LazyLock;

use rake::{Rake, StopWords};
use serde::{Deserialize, Serialize};

/// How sessions get their automatic tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaggingMode {
    /// Keywords of the session text by RAKE.
    #[default]
    Keywords,
    /// Ask the loaded model for topic tags (falls back to keywords when it fails).
    Llm,
    /// No automatic tags.
    Off,
}

/// English stop words: function words plus the chat filler that would otherwise win
/// ("please", "thanks", "tell me").
const STOP_WORDS: &str = "a about above after again against all also am an and any are aren't as \
at be because been before being below between both but by can can't cannot could couldn't did \
didn't do does doesn't doing don't down during each either else even ever every few for from \
further get gets getting give given go goes going gone got had hadn't has hasn't have haven't \
having he he'd he'll he's her here here's hers herself him himself his how how's however i i'd \
i'll i'm i've if in into is isn't it it's its itself just know let let's like likely made make \
many may me might more most much must mustn't my myself need needs never no nor not now of off \
often on once one only or other ought our ours ourselves out over own perhaps please put quite \
rather really said same say says see seem seems shall shan't she she'd she'll she's should \
shouldn't since so some something still such sure take tell than thank thanks that that's the \
their theirs them themselves then there there's these they they'd they'll they're they've thing \
things think this those though through thus to too under until up upon us use used using very \
want wants was wasn't way we we'd we'll we're we've well were weren't what what's whatever when \
when's where where's whether which while who who's whom whose why why's will with within without \
won't would wouldn't yes yet you you'd you'll you're you've your yours yourself yourselves hello \
hi hey okay ok answer question questions assistant user help sorry yeah right able";

static RAKE: LazyLock<Rake> = LazyLock::new(|| {
    let words: HashSet<String> = STOP_WORDS.split_whitespace().map(str::to_owned).collect();
    Rake::new(StopWords::from(words))
});

/// The longest tag phrase, in words.
const MAX_TAG_WORDS: usize = 3;

/// Extracts up to `max` tags from `text`, best first.
#[must_use]
pub fn keyword_tags(text: &str, max: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    RAKE.run(text)
        .into_iter()
        .filter_map(|scored| clean_phrase(&scored.keyword))
        .filter(|tag| seen.insert(tag.clone()))
        .take(max)
        .collect()
}

/// Lowercases a candidate phrase and keeps it when it makes a sensible tag.
fn clean_phrase(phrase: &str) -> Option<String> {
    let words: Vec<String> = phrase
        .split_whitespace()
        .map(|word| word.trim_matches(|ch: char| !ch.is_alphanumeric()).to_lowercase())
        .filter(|word| !word.is_empty())
        .collect();
    if words.is_empty() || words.len() > MAX_TAG_WORDS {
        return None;
    }
    let meaningful = words.iter().all(|word| {
        word.chars().count() >= 3
            && word.chars().any(char::is_alphabetic)
            && !word.chars().all(|ch| ch.is_ascii_digit())
    });
    meaningful.then(|| words.join(" "))
}

/// The prompt asking the model for tags.
#[must_use]
pub fn llm_prompt(text: &str) -> String {
    format!(
        "List three to five short topic tags for the conversation below, as one line of \
         comma-separated lowercase words, and nothing else.\n\nConversation:\n{text}"
    )
}

/// Parses the model's answer to [`llm_prompt`].
#[must_use]
pub fn parse_llm_tags(answer: &str, max: usize) -> Vec<String> {
    let line = answer.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
    let mut seen = HashSet::new();
    line.split([',', ';'])
        .filter_map(|tag| {
            let tag = tag.trim().trim_start_matches(['#', '-', '*']).trim().to_lowercase();
            (!tag.is_empty() && tag.len() <= 40 && tag.split_whitespace().count() <= MAX_TAG_WORDS)
                .then_some(tag)
        })
        .filter(|tag| seen.insert(tag.clone()))
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_come_from_the_content_not_the_filler() {
        let text = "Hello! Can you tell me how to repot a fiddle leaf fig? \
                    My fiddle leaf fig has root rot and yellow leaves. \
                    Thanks, and what potting soil works for a fiddle leaf fig?";
        let tags = keyword_tags(text, 5);
        assert!(tags.iter().any(|t| t.contains("fiddle leaf fig")), "{tags:?}");
        assert!(tags.iter().all(|t| !t.contains("hello") && !t.contains("thanks")), "{tags:?}");
        assert!(tags.len() <= 5);
    }

    #[test]
    fn empty_or_junk_text_gives_no_tags() {
        assert!(keyword_tags("", 5).is_empty());
        assert!(keyword_tags("the and of 12 34 !!", 5).is_empty());
    }

    #[test]
    fn llm_answers_are_parsed_leniently() {
        assert_eq!(
            parse_llm_tags("\n#Gardening, Indoor Plants; root rot, gardening\nextra", 5),
            ["gardening", "indoor plants", "root rot"]
        );
        assert!(parse_llm_tags("", 5).is_empty());
    }
}
