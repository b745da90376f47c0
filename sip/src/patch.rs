//! Writing a patched copy of a Mach-O file: the slices the layer can load
//! into (thin, or a rebuilt fat file), each with its old signature cut
//! off, `__RESTRICT` renamed, arm64e turned into plain arm64 (an ad hoc
//! signed arm64e program is not allowed to run outside Apple's own), and
//! an ad hoc signature computed here.

use crate::codesign::{self, SignOptions, Signature};
use crate::macho::{self, Arch, Kind, MachO, FAT_ARCH_SIZE, FAT_HEADER_SIZE, FAT_MAGIC};
use crate::Error;

/// What `__RESTRICT` segments and sections are renamed to.
pub const NEUTRAL_SEGMENT: &str = "__MIRRORD_NORSTR";

/// The architecture a slice of `arch` becomes in the copy, if the layer
/// (built for `layer_archs`) can load into it.
pub fn output_arch(arch: Arch, layer_archs: &[Arch]) -> Option<Arch> {
    if layer_archs.contains(&arch) {
        Some(arch)
    } else if arch == Arch::Arm64e && layer_archs.contains(&Arch::Arm64) {
        Some(Arch::Arm64)
    } else {
        None
    }
}

/// The patched copy of a thin or fat Mach-O file. `name` is the signature
/// identifier used when a slice has no signature of its own.
pub fn patch_binary(data: &[u8], layer_archs: &[Arch], name: &str) -> Result<Vec<u8>, Error> {
    let slices = macho::slices(data)?;
    // One slice per output architecture; a native slice wins over one
    // converted from arm64e.
    let mut chosen: Vec<(Arch, Arch, &[u8])> = Vec::new();
    for (arch, bytes) in &slices {
        let Some(out) = output_arch(*arch, layer_archs) else {
            continue;
        };
        match chosen.iter_mut().find(|(_, o, _)| *o == out) {
            Some(entry) if *arch == out => *entry = (*arch, out, bytes),
            Some(_) => {}
            None => chosen.push((*arch, out, bytes)),
        }
    }
    if chosen.is_empty() {
        return Err(Error::NoLoadableSlice {
            found: slices.iter().map(|(a, _)| a.to_string()).collect(),
            layer: layer_archs.iter().map(Arch::to_string).collect(),
        });
    }
    let patched: Vec<(Arch, Vec<u8>)> = chosen
        .into_iter()
        .map(|(_, out, bytes)| Ok((out, patch_slice(bytes, out, name)?)))
        .collect::<Result<_, Error>>()?;
    if macho::kind(data) == Kind::Thin || patched.len() == 1 {
        return Ok(patched
            .into_iter()
            .next()
            .map(|(_, b)| b)
            .unwrap_or_default());
    }
    Ok(fat(&patched))
}

/// One slice, patched and re-signed as `out_arch`.
pub fn patch_slice(slice: &[u8], out_arch: Arch, name: &str) -> Result<Vec<u8>, Error> {
    let parsed = MachO::parse(slice)?;
    let mut identifier = name.to_owned();
    let end = match parsed.code_signature {
        Some(cs) => {
            if let Some(signature) = parsed
                .signature_bytes()
                .and_then(|b| Signature::parse(b).ok())
            {
                if let Some(cd) = signature.code_directories.first() {
                    if !cd.identifier.is_empty() {
                        identifier = cd.identifier.clone();
                    }
                }
            }
            let beyond = parsed.segments.iter().any(|s| {
                s.name != "__LINKEDIT"
                    && s.filesize > 0
                    && s.fileoff + s.filesize > u64::from(cs.dataoff)
            });
            if beyond {
                return Err(Error::Unsupported(
                    "the code signature is not at the end of the file's data".into(),
                ));
            }
            if (cs.dataoff as usize) < parsed.commands_end() {
                return Err(macho::malformed(
                    "the code signature starts inside the load commands",
                ));
            }
            cs.dataoff as usize
        }
        None => slice.len(),
    };
    let mut out = slice[..end].to_vec();
    // Until `sign_slice` sets them again: no signature, and __LINKEDIT
    // ending where the file now ends.
    if let Some(cs) = parsed.code_signature {
        macho::put_le32(&mut out, cs.cmd_offset + 8, 0);
        macho::put_le32(&mut out, cs.cmd_offset + 12, 0);
    }
    for segment in parsed.segments.iter().filter(|s| s.name == "__LINKEDIT") {
        let filesize = (end as u64).saturating_sub(segment.fileoff);
        macho::put_le64(
            &mut out,
            segment.cmd_offset + 48,
            filesize.min(segment.filesize),
        );
    }
    if out_arch != parsed.header.arch {
        let (cputype, cpusubtype) = out_arch.cpu();
        macho::put_le32(&mut out, 4, cputype as u32);
        macho::put_le32(&mut out, 8, cpusubtype as u32);
    }
    for segment in parsed.segments.iter().filter(|s| s.name == "__RESTRICT") {
        put_name(&mut out, segment.cmd_offset + 8);
        for i in 0..segment.sections.len() {
            put_name(
                &mut out,
                segment.cmd_offset + macho::SEGMENT_COMMAND_SIZE + i * macho::SECTION_SIZE + 16,
            );
        }
    }
    codesign::sign_slice(out, &SignOptions::adhoc(&identifier))
}

fn put_name(data: &mut [u8], at: usize) {
    let mut name = [0u8; 16];
    name[..NEUTRAL_SEGMENT.len()].copy_from_slice(NEUTRAL_SEGMENT.as_bytes());
    data[at..at + 16].copy_from_slice(&name);
}

/// A fat file of `slices`, each aligned to its architecture's page size.
pub fn fat(slices: &[(Arch, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&FAT_MAGIC.to_be_bytes());
    out.extend_from_slice(&(slices.len() as u32).to_be_bytes());
    let mut offset = (FAT_HEADER_SIZE + FAT_ARCH_SIZE * slices.len()) as u64;
    let mut placed = Vec::new();
    for (arch, bytes) in slices {
        let align = arch.page_size().max(0x4000);
        offset = offset.next_multiple_of(align);
        let (cputype, cpusubtype) = arch.cpu();
        for word in [
            cputype as u32,
            cpusubtype as u32,
            offset as u32,
            bytes.len() as u32,
            align.trailing_zeros(),
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        placed.push(offset);
        offset += bytes.len() as u64;
    }
    for ((_, bytes), at) in slices.iter().zip(placed) {
        out.resize(at as usize, 0);
        out.extend_from_slice(bytes);
    }
    out
}
