//! Parsing `--device` into a candle device, with errors that say what is available.

use candle_core::Device;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`: use cpu, cuda, cuda:N or metal")]
    Unknown(String),
    #[error("device `{device}` is not available: {message}")]
    Unavailable { device: String, message: String },
}

/// `cpu`, `cuda`, `cuda:N`, `metal` or `metal:N`.
pub fn parse_device(spec: &str) -> Result<Device, DeviceError> {
    let spec = spec.trim().to_ascii_lowercase();
    let (kind, ordinal) = match spec.split_once(':') {
        Some((k, n)) => {
            let n = n
                .parse::<usize>()
                .map_err(|_| DeviceError::Unknown(spec.clone()))?;
            (k.to_string(), n)
        }
        None => (spec.clone(), 0),
    };
    let unavailable = |e: candle_core::Error| DeviceError::Unavailable {
        device: spec.clone(),
        message: e.to_string(),
    };
    match kind.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !candle_core::utils::cuda_is_available() {
                return Err(DeviceError::Unavailable {
                    device: spec.clone(),
                    message:
                        "this build of candor has no CUDA support (build with --features cuda)"
                            .into(),
                });
            }
            Device::new_cuda(ordinal).map_err(unavailable)
        }
        "metal" => {
            if !candle_core::utils::metal_is_available() {
                return Err(DeviceError::Unavailable {
                    device: spec.clone(),
                    message:
                        "this build of candor has no Metal support (build with --features metal)"
                            .into(),
                });
            }
            Device::new_metal(ordinal).map_err(unavailable)
        }
        _ => Err(DeviceError::Unknown(spec.clone())),
    }
}

/// A short human name for logs.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!(
            "cpu ({} threads)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        Device::Cuda(_) => "cuda".to_string(),
        Device::Metal(_) => "metal".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses() {
        assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
        assert!(matches!(parse_device(" CPU "), Ok(Device::Cpu)));
    }

    #[test]
    fn unknown_devices_are_named() {
        let e = parse_device("tpu").unwrap_err().to_string();
        assert!(e.contains("tpu") && e.contains("cuda:N"), "{e}");
        assert!(parse_device("cuda:x").is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = parse_device("cuda:0").unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
