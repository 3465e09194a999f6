//! Random byte mutations and truncations of a valid model never panic: the loader either
//! accepts the file (a mutation inside weight data is still a valid model) or returns an error.

use outpost_models::Model;
use outpost_tests::tiny_model;
use proptest::prelude::*;

fn valid() -> Vec<u8> {
    tiny_model(4).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_bytes_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = valid();
        for (i, v) in edits {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        let _ = Model::from_bytes(bytes);
    }

    #[test]
    fn truncations_never_panic(cut in any::<prop::sample::Index>()) {
        let mut bytes = valid();
        let len = cut.index(bytes.len());
        bytes.truncate(len);
        prop_assert!(Model::from_bytes(bytes).is_err());
    }

    #[test]
    fn header_text_mutations_never_panic(at in any::<prop::sample::Index>(), text in "[\\[\\]{}\",:0-9a-z -]{1,12}") {
        // Splice text into the JSON header and fix the length prefix, so the mutation reaches
        // the metadata parser and the validator instead of stopping at the length check.
        let bytes = valid();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut header = bytes[8..8 + n].to_vec();
        let pos = at.index(header.len());
        header.splice(pos..pos, text.bytes());
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&bytes[8 + n..]);
        let _ = Model::from_bytes(out);
    }
}
