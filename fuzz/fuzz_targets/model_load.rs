//! Coverage-guided fuzzing of the model loader: any byte string must load or fail cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = outpost_models::Model::from_bytes(data.to_vec()) {
        // A model that loads must also be fully readable.
        let _ = outpost_models::ModelSummary::of(&model);
        for t in model.tensors() {
            let _ = (t.as_i8(), t.as_i32(), t.as_f32(), t.as_f16());
        }
    }
});
