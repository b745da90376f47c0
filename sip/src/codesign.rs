//! Embedded code signatures: reading the flags and entitlements that make
//! dyld drop `DYLD_*` variables, writing an ad hoc signature computed here
//! (no `codesign` needed), and checking one.
//!
//! The signature is a big-endian `SuperBlob` (magic `0xfade0cc0`) holding
//! indexed blobs: the `CodeDirectory` (`0xfade0c02`, slot 0), the
//! requirements (`0xfade0c01`, slot 2), the entitlements (`0xfade7171`,
//! slot 5; DER form `0xfade7172`, slot 7) and, for a real signature, a CMS
//! wrapper (`0xfade0b01`, slot `0x10000`). The CodeDirectory holds one hash
//! per page of the file up to `codeLimit` (the signature's own offset) and,
//! before them, the hashes of the other blobs ("special slots", slot `-n`
//! at `hashOffset - n * hashSize`). An ad hoc signature is a CodeDirectory
//! with `CS_ADHOC` and no CMS blob.

use sha2::{Digest, Sha256};

use crate::macho::{self, malformed, MachO, LC_CODE_SIGNATURE, LINKEDIT_DATA_SIZE, MH_EXECUTE};
use crate::Error;

pub const CSMAGIC_EMBEDDED_SIGNATURE: u32 = 0xfade_0cc0;
pub const CSMAGIC_CODEDIRECTORY: u32 = 0xfade_0c02;
pub const CSMAGIC_REQUIREMENTS: u32 = 0xfade_0c01;
pub const CSMAGIC_EMBEDDED_ENTITLEMENTS: u32 = 0xfade_7171;
pub const CSMAGIC_EMBEDDED_DER_ENTITLEMENTS: u32 = 0xfade_7172;
pub const CSMAGIC_BLOBWRAPPER: u32 = 0xfade_0b01;

pub const CSSLOT_CODEDIRECTORY: u32 = 0;
pub const CSSLOT_REQUIREMENTS: u32 = 2;
pub const CSSLOT_ENTITLEMENTS: u32 = 5;
pub const CSSLOT_DER_ENTITLEMENTS: u32 = 7;
pub const CSSLOT_ALTERNATE_CODEDIRECTORIES: u32 = 0x1000;
pub const CSSLOT_SIGNATURESLOT: u32 = 0x10000;

pub const CS_ADHOC: u32 = 0x2;
pub const CS_HARD: u32 = 0x100;
pub const CS_KILL: u32 = 0x200;
pub const CS_RESTRICT: u32 = 0x800;
pub const CS_RUNTIME: u32 = 0x1_0000;
pub const CS_LINKER_SIGNED: u32 = 0x2_0000;

pub const CS_HASHTYPE_SHA256: u8 = 2;
pub const CS_EXECSEG_MAIN_BINARY: u64 = 0x1;

/// CodeDirectory versions: 0x20400 adds the executable segment fields,
/// 0x20500 the hardened runtime version.
pub const CD_VERSION_EXECSEG: u32 = 0x20400;
pub const CD_VERSION_RUNTIME: u32 = 0x20500;

/// The entitlement that lets a hardened-runtime program keep `DYLD_*`.
pub const ALLOW_DYLD_ENV: &str = "com.apple.security.cs.allow-dyld-environment-variables";

const PAGE_SHIFT: u8 = 12;
const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
const HASH_SIZE: usize = 32;
const SUPERBLOB_HEADER: usize = 12;
const BLOB_INDEX: usize = 8;
const EMPTY_REQUIREMENTS: [u8; 12] = [0xfa, 0xde, 0x0c, 0x01, 0, 0, 0, 12, 0, 0, 0, 0];

/// What a signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub code_directories: Vec<CodeDirectory>,
    /// The XML entitlements blob's payload.
    pub entitlements: Option<Vec<u8>>,
    /// The DER entitlements blob's payload.
    pub der_entitlements: Option<Vec<u8>>,
    /// The requirements blob, whole.
    pub requirements: Option<Vec<u8>>,
    /// A CMS signature (a real, not ad hoc, signature) is present.
    pub has_cms: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDirectory {
    pub version: u32,
    pub flags: u32,
    pub identifier: String,
    pub hash_type: u8,
    pub hash_size: u8,
    pub page_shift: u8,
    pub code_limit: u32,
    pub exec_seg_flags: u64,
    /// The hardened runtime's version (CodeDirectory 0x20500 and later).
    pub runtime: Option<u32>,
    /// Special slot hashes, slot 1 first.
    pub special_hashes: Vec<Vec<u8>>,
    pub code_hashes: Vec<Vec<u8>>,
}

impl Signature {
    pub fn parse(blob: &[u8]) -> Result<Signature, Error> {
        let magic = macho::be32(blob, 0, "signature magic")?;
        if magic != CSMAGIC_EMBEDDED_SIGNATURE {
            return Err(malformed(format!("signature magic {magic:#x}")));
        }
        let length = macho::be32(blob, 4, "signature length")? as usize;
        let blob = blob
            .get(..length)
            .ok_or_else(|| malformed("signature longer than its space"))?;
        let count = macho::be32(blob, 8, "signature blob count")? as usize;
        if count > (blob.len() - SUPERBLOB_HEADER.min(blob.len())) / BLOB_INDEX {
            return Err(malformed(format!("{count} signature blobs cannot fit")));
        }
        let mut signature = Signature {
            code_directories: Vec::new(),
            entitlements: None,
            der_entitlements: None,
            requirements: None,
            has_cms: false,
        };
        for i in 0..count {
            let slot = macho::be32(blob, SUPERBLOB_HEADER + i * BLOB_INDEX, "slot")?;
            let offset = macho::be32(blob, SUPERBLOB_HEADER + i * BLOB_INDEX + 4, "offset")?;
            let inner = sub_blob(blob, offset as usize)?;
            let inner_magic = macho::be32(inner, 0, "blob magic")?;
            match (slot, inner_magic) {
                (CSSLOT_CODEDIRECTORY, CSMAGIC_CODEDIRECTORY) => signature
                    .code_directories
                    .push(CodeDirectory::parse(inner)?),
                (s, CSMAGIC_CODEDIRECTORY)
                    if (CSSLOT_ALTERNATE_CODEDIRECTORIES..CSSLOT_ALTERNATE_CODEDIRECTORIES + 5)
                        .contains(&s) =>
                {
                    signature
                        .code_directories
                        .push(CodeDirectory::parse(inner)?)
                }
                (CSSLOT_REQUIREMENTS, CSMAGIC_REQUIREMENTS) => {
                    signature.requirements = Some(inner.to_vec())
                }
                (CSSLOT_ENTITLEMENTS, CSMAGIC_EMBEDDED_ENTITLEMENTS) => {
                    signature.entitlements = Some(inner[8..].to_vec())
                }
                (CSSLOT_DER_ENTITLEMENTS, CSMAGIC_EMBEDDED_DER_ENTITLEMENTS) => {
                    signature.der_entitlements = Some(inner[8..].to_vec())
                }
                (CSSLOT_SIGNATURESLOT, CSMAGIC_BLOBWRAPPER) => signature.has_cms = true,
                _ => {}
            }
        }
        if signature.code_directories.is_empty() {
            return Err(malformed("signature without a code directory"));
        }
        Ok(signature)
    }

    /// The flags of every code directory, or-ed.
    pub fn flags(&self) -> u32 {
        self.code_directories.iter().fold(0, |f, cd| f | cd.flags)
    }

    /// The hardened runtime is on (by flag, or by a runtime version).
    pub fn hardened_runtime(&self) -> bool {
        self.flags() & CS_RUNTIME != 0
    }

    /// The entitlements grant `ALLOW_DYLD_ENV`, in XML or DER form.
    pub fn allows_dyld_environment(&self) -> bool {
        let xml = self
            .entitlements
            .as_deref()
            .is_some_and(xml_grants_allow_dyld_env);
        let der = self
            .der_entitlements
            .as_deref()
            .is_some_and(der_grants_allow_dyld_env);
        xml || der
    }
}

impl CodeDirectory {
    pub fn parse(blob: &[u8]) -> Result<CodeDirectory, Error> {
        let length = macho::be32(blob, 4, "code directory length")? as usize;
        let cd = blob
            .get(..length)
            .filter(|cd| cd.len() >= 44)
            .ok_or_else(|| malformed("code directory length"))?;
        let version = macho::be32(cd, 8, "cd version")?;
        let flags = macho::be32(cd, 12, "cd flags")?;
        let hash_offset = macho::be32(cd, 16, "hashOffset")? as usize;
        let ident_offset = macho::be32(cd, 20, "identOffset")? as usize;
        let n_special = macho::be32(cd, 24, "nSpecialSlots")? as usize;
        let n_code = macho::be32(cd, 28, "nCodeSlots")? as usize;
        let code_limit = macho::be32(cd, 32, "codeLimit")?;
        let (hash_size, hash_type, page_shift) = (cd[36], cd[37], cd[39]);
        let exec_seg_flags = if version >= CD_VERSION_EXECSEG {
            macho::be64(cd, 80, "execSegFlags")?
        } else {
            0
        };
        let runtime = if version >= CD_VERSION_RUNTIME {
            Some(macho::be32(cd, 88, "runtime")?)
        } else {
            None
        };
        let identifier = cd
            .get(ident_offset..)
            .and_then(|s| s.split(|b| *b == 0).next())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .ok_or_else(|| malformed("code directory identifier"))?;
        let hs = hash_size as usize;
        let start = n_special
            .checked_mul(hs)
            .and_then(|n| hash_offset.checked_sub(n))
            .ok_or_else(|| malformed("special slots before the code directory"))?;
        let end = n_code
            .checked_mul(hs)
            .and_then(|n| hash_offset.checked_add(n))
            .filter(|end| *end <= cd.len())
            .ok_or_else(|| malformed("code slots past the code directory"))?;
        if hs == 0 && n_code + n_special > 0 {
            return Err(malformed("zero hash size"));
        }
        let hashes = |from: usize, count: usize| -> Vec<Vec<u8>> {
            (0..count)
                .map(|i| cd[from + i * hs..from + (i + 1) * hs].to_vec())
                .collect()
        };
        let mut special_hashes = hashes(start, n_special);
        special_hashes.reverse();
        let code_hashes = hashes(hash_offset, n_code);
        debug_assert!(hash_offset + n_code * hs == end);
        Ok(CodeDirectory {
            version,
            flags,
            identifier,
            hash_type,
            hash_size,
            page_shift,
            code_limit,
            exec_seg_flags,
            runtime,
            special_hashes,
            code_hashes,
        })
    }
}

fn sub_blob(blob: &[u8], offset: usize) -> Result<&[u8], Error> {
    let length = macho::be32(blob, offset + 4, "blob length")? as usize;
    if length < 8 {
        return Err(malformed("signature blob shorter than its header"));
    }
    offset
        .checked_add(length)
        .and_then(|end| blob.get(offset..end))
        .ok_or_else(|| malformed("signature blob past the signature"))
}

fn xml_grants_allow_dyld_env(xml: &[u8]) -> bool {
    let key = format!("<key>{ALLOW_DYLD_ENV}</key>");
    let Some(at) = find(xml, key.as_bytes()) else {
        return false;
    };
    let rest = &xml[at + key.len()..];
    let rest = &rest[rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len())..];
    rest.starts_with(b"<true/>")
}

fn der_grants_allow_dyld_env(der: &[u8]) -> bool {
    // The key as a UTF8String, then BOOLEAN TRUE (01 01 ff).
    let mut key = vec![0x0c, ALLOW_DYLD_ENV.len() as u8];
    key.extend_from_slice(ALLOW_DYLD_ENV.as_bytes());
    find(der, &key).is_some_and(|at| der[at + key.len()..].starts_with(&[0x01, 0x01, 0xff]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What to put in a signature. `SignOptions::adhoc` is what the patcher
/// writes; the other fields let tests build signatures as Apple's tools
/// would (restrict, hardened runtime, entitlements, a CMS blob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    pub identifier: String,
    pub flags: u32,
    /// Writes a 0x20500 CodeDirectory with this runtime version.
    pub runtime: Option<u32>,
    /// An XML entitlements plist.
    pub entitlements: Option<Vec<u8>>,
    /// Adds an (empty) CMS wrapper blob, as a real signature has.
    pub cms: bool,
}

impl SignOptions {
    pub fn adhoc(identifier: &str) -> SignOptions {
        SignOptions {
            identifier: identifier.to_owned(),
            flags: CS_ADHOC,
            runtime: None,
            entitlements: None,
            cms: false,
        }
    }
}

/// The executable segment a CodeDirectory names (`__TEXT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecSeg {
    pub base: u64,
    pub limit: u64,
    pub flags: u64,
}

/// The size of the signature `build` will write for `code_len` bytes.
pub fn signature_size(code_len: usize, options: &SignOptions) -> usize {
    let blobs = blobs_without_cd(options);
    let cd = code_directory_len(code_len, options);
    SUPERBLOB_HEADER
        + BLOB_INDEX * (1 + blobs.len())
        + cd
        + blobs.iter().map(|(_, b)| b.len()).sum::<usize>()
}

fn special_slot_count(options: &SignOptions) -> usize {
    if options.entitlements.is_some() {
        CSSLOT_ENTITLEMENTS as usize
    } else {
        CSSLOT_REQUIREMENTS as usize
    }
}

fn cd_header_len(options: &SignOptions) -> usize {
    if options.runtime.is_some() {
        96
    } else {
        88
    }
}

fn code_directory_len(code_len: usize, options: &SignOptions) -> usize {
    cd_header_len(options)
        + options.identifier.len()
        + 1
        + HASH_SIZE * (special_slot_count(options) + code_len.div_ceil(PAGE_SIZE))
}

fn blobs_without_cd(options: &SignOptions) -> Vec<(u32, Vec<u8>)> {
    let mut blobs = vec![(CSSLOT_REQUIREMENTS, EMPTY_REQUIREMENTS.to_vec())];
    if let Some(xml) = &options.entitlements {
        let mut blob = Vec::with_capacity(8 + xml.len());
        blob.extend_from_slice(&CSMAGIC_EMBEDDED_ENTITLEMENTS.to_be_bytes());
        blob.extend_from_slice(&((8 + xml.len()) as u32).to_be_bytes());
        blob.extend_from_slice(xml);
        blobs.push((CSSLOT_ENTITLEMENTS, blob));
    }
    if options.cms {
        let mut blob = CSMAGIC_BLOBWRAPPER.to_be_bytes().to_vec();
        blob.extend_from_slice(&8u32.to_be_bytes());
        blobs.push((CSSLOT_SIGNATURESLOT, blob));
    }
    blobs
}

/// The signature (a SuperBlob) over `code`, the slice's bytes up to where
/// the signature will be written.
pub fn build(code: &[u8], exec_seg: ExecSeg, options: &SignOptions) -> Vec<u8> {
    let blobs = blobs_without_cd(options);
    let n_special = special_slot_count(options);
    let n_code = code.len().div_ceil(PAGE_SIZE);
    let header_len = cd_header_len(options);
    let ident_offset = header_len;
    let hash_offset = ident_offset + options.identifier.len() + 1 + n_special * HASH_SIZE;
    let cd_len = code_directory_len(code.len(), options);

    let mut cd = Vec::with_capacity(cd_len);
    let version = if options.runtime.is_some() {
        CD_VERSION_RUNTIME
    } else {
        CD_VERSION_EXECSEG
    };
    for word in [
        CSMAGIC_CODEDIRECTORY,
        cd_len as u32,
        version,
        options.flags,
        hash_offset as u32,
        ident_offset as u32,
        n_special as u32,
        n_code as u32,
        code.len() as u32,
    ] {
        cd.extend_from_slice(&word.to_be_bytes());
    }
    cd.extend_from_slice(&[HASH_SIZE as u8, CS_HASHTYPE_SHA256, 0, PAGE_SHIFT]);
    cd.extend_from_slice(&[0; 4]); // spare2
    cd.extend_from_slice(&[0; 4]); // scatterOffset
    cd.extend_from_slice(&[0; 4]); // teamOffset
    cd.extend_from_slice(&[0; 4]); // spare3
    cd.extend_from_slice(&(code.len() as u64).to_be_bytes()); // codeLimit64
    cd.extend_from_slice(&exec_seg.base.to_be_bytes());
    cd.extend_from_slice(&exec_seg.limit.to_be_bytes());
    cd.extend_from_slice(&exec_seg.flags.to_be_bytes());
    if let Some(runtime) = options.runtime {
        cd.extend_from_slice(&runtime.to_be_bytes());
        cd.extend_from_slice(&[0; 4]); // preEncryptOffset
    }
    debug_assert_eq!(cd.len(), header_len);
    cd.extend_from_slice(options.identifier.as_bytes());
    cd.push(0);
    let mut special = vec![[0u8; HASH_SIZE]; n_special];
    for (slot, blob) in &blobs {
        if let Some(hash) = special.get_mut((*slot as usize).wrapping_sub(1)) {
            *hash = Sha256::digest(blob).into();
        }
    }
    for hash in special.iter().rev() {
        cd.extend_from_slice(hash);
    }
    for page in code.chunks(PAGE_SIZE) {
        cd.extend_from_slice(&Sha256::digest(page));
    }
    debug_assert_eq!(cd.len(), cd_len);

    let count = 1 + blobs.len();
    let total = signature_size(code.len(), options);
    let mut out = Vec::with_capacity(total);
    for word in [CSMAGIC_EMBEDDED_SIGNATURE, total as u32, count as u32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    let mut offset = SUPERBLOB_HEADER + BLOB_INDEX * count;
    for (slot, len) in std::iter::once((CSSLOT_CODEDIRECTORY, cd.len()))
        .chain(blobs.iter().map(|(s, b)| (*s, b.len())))
    {
        out.extend_from_slice(&slot.to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        offset += len;
    }
    out.extend_from_slice(&cd);
    for (_, blob) in &blobs {
        out.extend_from_slice(blob);
    }
    debug_assert_eq!(out.len(), total);
    out
}

/// Signs a slice that has no signature bytes (a previous one cut off):
/// adds `LC_CODE_SIGNATURE` if missing (when the header has room), sets it
/// and `__LINKEDIT` to cover the new signature, and appends it.
pub fn sign_slice(mut slice: Vec<u8>, options: &SignOptions) -> Result<Vec<u8>, Error> {
    let parsed = MachO::parse(&slice)?;
    let page = parsed.header.arch.page_size();
    let linkedit = parsed
        .segment("__LINKEDIT")
        .cloned()
        .ok_or_else(|| Error::Unsupported("no __LINKEDIT segment to hold a signature".into()))?;
    if parsed
        .segments
        .iter()
        .any(|s| s.filesize > 0 && s.fileoff > linkedit.fileoff)
    {
        return Err(Error::Unsupported(
            "__LINKEDIT is not the last segment in the file".into(),
        ));
    }
    let text = parsed.segment("__TEXT").cloned();
    let is_main = parsed.header.filetype == MH_EXECUTE;
    let cs_offset = match parsed.code_signature {
        Some(cs) => cs.cmd_offset,
        None => {
            let at = parsed.last_command_end();
            let end = at + LINKEDIT_DATA_SIZE;
            if end > parsed.first_content_offset() {
                return Err(Error::Unsupported(
                    "no room in the header to add a code signature command".into(),
                ));
            }
            // Slack in `sizeofcmds` past the last command takes the new one.
            let sizeofcmds = parsed.commands_end().max(end) - macho::HEADER_SIZE;
            let ncmds = parsed.header.ncmds + 1;
            macho::put_le32(&mut slice, 16, ncmds);
            macho::put_le32(&mut slice, 20, sizeofcmds as u32);
            macho::put_le32(&mut slice, at, LC_CODE_SIGNATURE);
            macho::put_le32(&mut slice, at + 4, LINKEDIT_DATA_SIZE as u32);
            at
        }
    };
    let dataoff = slice.len().next_multiple_of(16);
    if dataoff < linkedit.fileoff as usize {
        return Err(malformed("the file ends before __LINKEDIT"));
    }
    slice.resize(dataoff, 0);
    let size = signature_size(dataoff, options).next_multiple_of(16);
    let file_end = (dataoff + size) as u64;
    let filesize = file_end - linkedit.fileoff;
    let vmsize = filesize.next_multiple_of(page);
    macho::put_le32(&mut slice, cs_offset + 8, dataoff as u32);
    macho::put_le32(&mut slice, cs_offset + 12, size as u32);
    macho::put_le64(&mut slice, linkedit.cmd_offset + 32, vmsize);
    macho::put_le64(&mut slice, linkedit.cmd_offset + 48, filesize);
    let exec_seg = ExecSeg {
        base: text.as_ref().map_or(0, |t| t.fileoff),
        limit: text.as_ref().map_or(0, |t| t.filesize),
        flags: if is_main { CS_EXECSEG_MAIN_BINARY } else { 0 },
    };
    let signature = build(&slice, exec_seg, options);
    slice.extend_from_slice(&signature);
    slice.resize(file_end as usize, 0);
    Ok(slice)
}

/// Checks that a slice's signature is a well-formed ad hoc signature whose
/// code directory covers the file up to the signature and whose hashes
/// match its pages and blobs.
pub fn verify_adhoc(slice: &[u8]) -> Result<Signature, Error> {
    let parsed = MachO::parse(slice)?;
    let bad = |what: String| Error::BadSignature(what);
    let cs = parsed
        .code_signature
        .ok_or_else(|| bad("no LC_CODE_SIGNATURE".into()))?;
    let bytes = parsed
        .signature_bytes()
        .ok_or_else(|| bad("signature outside the file".into()))?;
    let signature = Signature::parse(bytes)?;
    let linkedit = parsed
        .segment("__LINKEDIT")
        .ok_or_else(|| bad("no __LINKEDIT".into()))?;
    if linkedit.fileoff + linkedit.filesize != u64::from(cs.dataoff) + u64::from(cs.datasize) {
        return Err(bad("__LINKEDIT does not end with the signature".into()));
    }
    if linkedit.vmsize < linkedit.filesize {
        return Err(bad("__LINKEDIT vmsize below its filesize".into()));
    }
    if signature.has_cms {
        return Err(bad("a CMS blob: not ad hoc".into()));
    }
    for cd in &signature.code_directories {
        if cd.flags & CS_ADHOC == 0 || cd.flags & (CS_RESTRICT | CS_RUNTIME) != 0 {
            return Err(bad(format!("code directory flags {:#x}", cd.flags)));
        }
        if cd.hash_type != CS_HASHTYPE_SHA256 || cd.hash_size as usize != HASH_SIZE {
            return Err(bad(format!("hash type {}", cd.hash_type)));
        }
        if cd.code_limit != cs.dataoff {
            return Err(bad(format!(
                "code limit {:#x}, signature at {:#x}",
                cd.code_limit, cs.dataoff
            )));
        }
        let page = 1usize
            .checked_shl(u32::from(cd.page_shift))
            .ok_or_else(|| bad("page size".into()))?;
        let pages: Vec<&[u8]> = slice[..cs.dataoff as usize].chunks(page).collect();
        if pages.len() != cd.code_hashes.len() {
            return Err(bad(format!(
                "{} code slots for {} pages",
                cd.code_hashes.len(),
                pages.len()
            )));
        }
        for (i, (page, hash)) in pages.iter().zip(&cd.code_hashes).enumerate() {
            if Sha256::digest(page).as_slice() != hash.as_slice() {
                return Err(bad(format!("page {i} does not match its hash")));
            }
        }
        let requirements_slot = cd.special_hashes.get(CSSLOT_REQUIREMENTS as usize - 1);
        if let (Some(blob), Some(hash)) = (&signature.requirements, requirements_slot) {
            if Sha256::digest(blob).as_slice() != hash.as_slice() {
                return Err(bad("requirements hash".into()));
            }
        }
    }
    Ok(signature)
}
