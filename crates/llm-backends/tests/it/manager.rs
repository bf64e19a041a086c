//! The model manager's rules for generation settings: a load's settings take effect only
//! when the load is accepted, may be partial, and concurrent updates never lose a field.

use ragd_core::{ErrorKind, GenerationSettings, SettingsPatch};
use ragd_llm_backends::import::Quantization;
use ragd_llm_backends::manager::{BackendKind, LoadRequest, ManagerConfig, ModelManager};
use ragd_llm_backends::registry::RegistryConfig;
use ragd_llm_backends::remote::HttpSettings;

fn manager() -> ModelManager {
    ModelManager::new(ManagerConfig {
        registry: RegistryConfig::default(),
        http: HttpSettings::default(),
        default_openai_url: "http://127.0.0.1:1/v1".to_owned(),
        // Nothing listens on port 1: a load is accepted, then fails in the background.
        default_ollama_url: "http://127.0.0.1:1".to_owned(),
        hub: None,
        allowed_dirs: Vec::new(),
        parallel: 1,
        import_dir: None,
        defaults: ragd_llm_backends::manager::LoadDefaults::default(),
    })
}

fn ollama_load(settings: SettingsPatch) -> LoadRequest {
    LoadRequest {
        backend: BackendKind::Ollama,
        model: "some-model".to_owned(),
        hub: None,
        base_url: None,
        api_key: None,
        context_length: None,
        gpu_layers: 0,
        quantization: Quantization::None,
        settings: Some(settings),
    }
}

// A current-thread runtime: the background load task cannot run (and end the `loading`
// state) before the test yields, so the second load meets a running one.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_load_puts_none_of_its_settings_in_force() {
    let models = manager();
    let defaults = GenerationSettings::default();

    // Partial settings are accepted with the load, as `update_settings` takes them.
    let first = SettingsPatch { temperature: Some(0.3), ..SettingsPatch::default() };
    models.load(ollama_load(first)).unwrap();
    let in_force = models.settings();
    assert!((in_force.temperature - 0.3).abs() < f32::EPSILON, "{in_force:?}");
    assert_eq!(in_force.max_new_tokens, defaults.max_new_tokens, "untouched fields keep theirs");

    // A second load while the first runs is refused, and its settings are not applied.
    let second = SettingsPatch { temperature: Some(1.9), ..SettingsPatch::default() };
    let err = models.load(ollama_load(second)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!((models.settings().temperature - 0.3).abs() < f32::EPSILON, "{:?}", models.settings());
}

#[tokio::test(flavor = "current_thread")]
async fn a_load_with_settings_out_of_range_is_refused_before_anything_changes() {
    let models = manager();
    let bad =
        SettingsPatch { temperature: Some(0.2), top_p: Some(3.0), ..SettingsPatch::default() };
    let err = models.load(ollama_load(bad)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("top_p"), "{err}");
    assert_eq!(models.settings(), GenerationSettings::default());
    assert_eq!(models.status().state.as_str(), "not_loaded", "no load started");
}

#[test]
fn concurrent_updates_of_different_fields_both_land() {
    let models = manager();
    let rounds = 2_000_u32;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..=rounds {
                let temperature = Some(f32::from(u16::try_from(i % 200).unwrap()) / 100.0);
                models
                    .update_settings(&SettingsPatch { temperature, ..SettingsPatch::default() })
                    .unwrap();
            }
        });
        scope.spawn(|| {
            for i in 1..=rounds {
                let max_new_tokens = Some(i);
                models
                    .update_settings(&SettingsPatch { max_new_tokens, ..SettingsPatch::default() })
                    .unwrap();
            }
        });
    });
    let settings = models.settings();
    // Each thread's last write survives the other's writes.
    assert!((settings.temperature - 0.0).abs() < f32::EPSILON, "{settings:?}");
    assert_eq!(settings.max_new_tokens, rounds, "{settings:?}");
}
