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
            Device::new_cuda(ordinal).map_err(|e| DeviceError::Unavailable {
                device: spec.clone(),
                // The first line: candle may append a backtrace.
                message: explain_cuda_error(
                    e.to_string().lines().next().unwrap_or_default(),
                    ordinal,
                ),
            })
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

/// What a CUDA error when opening GPU `ordinal` means for the user, and what to do; the
/// driver's own words follow.
fn explain_cuda_error(error: &str, ordinal: usize) -> String {
    let hint = if error.contains("CUDA_ERROR_NO_DEVICE") {
        "no NVIDIA GPU was found (`nvidia-smi` lists the GPUs the driver sees)".to_string()
    } else if error.contains("CUDA_ERROR_INVALID_DEVICE") {
        format!("there is no GPU {ordinal} (`nvidia-smi -L` lists them, numbered from 0)")
    } else if error.contains("CUDA_ERROR_STUB_LIBRARY") {
        "the NVIDIA driver library libcuda.so.1 loaded is the toolkit's link stub, not the \
         driver's: install the NVIDIA driver, or put its library ahead of the stubs folder in \
         LD_LIBRARY_PATH"
            .to_string()
    } else if [
        "INSUFFICIENT_DRIVER",
        "UNSUPPORTED_PTX_VERSION",
        "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
    ]
    .iter()
    .any(|c| error.contains(c))
    {
        "the NVIDIA driver is older than the CUDA version this build was made with (CUDA 13.0 \
         needs driver R580 or newer): update the driver, or build candor with the CUDA \
         toolkit the driver supports"
            .to_string()
    } else if error.contains("CUDA_ERROR_NOT_INITIALIZED")
        || error.contains("CUDA_ERROR_OPERATING_SYSTEM")
    {
        "the CUDA driver could not start (is the NVIDIA kernel module loaded? `nvidia-smi` \
         says)"
            .to_string()
    } else {
        "the GPU could not be opened".to_string()
    };
    format!("{hint} ({error})")
}

/// Bytes free to allocate on `device`: the device's free memory on a CUDA GPU, else the
/// system's available memory (MemAvailable from /proc/meminfo; a Mac's GPU shares it).
pub fn free_memory(device: &Device) -> Option<usize> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(d) => d
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _)| free),
        _ => available_memory(),
    }
}

/// Bytes of system memory available to allocate: MemAvailable from /proc/meminfo where
/// there is one.
fn available_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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

    #[test]
    fn cuda_errors_say_what_to_do() {
        let e = explain_cuda_error(
            r#"DriverError(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected")"#,
            0,
        );
        assert!(
            e.starts_with("no NVIDIA GPU was found") && e.contains("no CUDA-capable"),
            "{e}"
        );
        let e = explain_cuda_error(
            "DriverError(CUDA_ERROR_INVALID_DEVICE, \"invalid device ordinal\")",
            3,
        );
        assert!(e.starts_with("there is no GPU 3"), "{e}");
        let e = explain_cuda_error("DriverError(CUDA_ERROR_INSUFFICIENT_DRIVER, \"..\")", 0);
        assert!(e.contains("update the driver"), "{e}");
        let e = explain_cuda_error("DriverError(CUDA_ERROR_STUB_LIBRARY, \"..\")", 0);
        assert!(e.contains("install the NVIDIA driver"), "{e}");
        let e = explain_cuda_error("something new", 0);
        assert_eq!(e, "the GPU could not be opened (something new)");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = parse_device("cuda:0").unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
