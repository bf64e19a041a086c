//! [`Health`]: what the engine's components can do now, published on a watch channel
//! ([`crate::Engine::health`]), as text-embeddings-inference's `Infer::health_watcher` does.

use serde::Serialize;

/// The engine's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Every component is available.
    Ok,
    /// The engine serves, but some component is unavailable (see its reason).
    Degraded,
}

/// One component's availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// `catalog`, `embedder`, `vector_store` or `documents`.
    pub name: &'static str,
    /// Whether it works.
    pub available: bool,
    /// What it is (available) or why it is not (unavailable).
    pub detail: String,
}

impl Component {
    pub(crate) fn available(name: &'static str, detail: &str) -> Self {
        Self { name, available: true, detail: detail.to_owned() }
    }

    pub(crate) fn unavailable(name: &'static str, reason: &str) -> Self {
        Self { name, available: false, detail: reason.to_owned() }
    }
}

/// A snapshot of the engine's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The overall state.
    pub status: HealthStatus,
    /// Each component.
    pub components: Vec<Component>,
}

impl Health {
    pub(crate) fn from_components(components: Vec<Component>) -> Self {
        let status = if components.iter().all(|c| c.available) {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        };
        Self { status, components }
    }

    /// This health with `component` in place of the one of its name.
    pub(crate) fn with(mut self, component: Component) -> Self {
        self.components.retain(|c| c.name != component.name);
        self.components.push(component);
        Self::from_components(self.components)
    }

    /// The component named `name`.
    #[must_use]
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}
