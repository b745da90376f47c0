//! Reading 64-bit Mach-O files, thin and universal ("fat"), with every
//! offset and size checked against the file: damaged input is an
//! [`Error::Malformed`], never a panic or an out-of-bounds slice.
//!
//! Only what the protection decision and the patcher need is read: the
//! header, the load commands, the segments with their sections, and
//! `LC_CODE_SIGNATURE`. Integers in a Mach-O slice are little-endian (both
//! architectures we handle are); the fat header and its table are
//! big-endian.

use crate::Error;

pub const MH_MAGIC_64: u32 = 0xfeed_facf;
pub const MH_MAGIC: u32 = 0xfeed_face;
pub const MH_CIGAM_64: u32 = 0xcffa_edfe;
pub const MH_CIGAM: u32 = 0xcefa_edfe;
pub const FAT_MAGIC: u32 = 0xcafe_babe;
pub const FAT_MAGIC_64: u32 = 0xcafe_babf;

pub const MH_EXECUTE: u32 = 0x2;

pub const LC_SEGMENT_64: u32 = 0x19;
pub const LC_CODE_SIGNATURE: u32 = 0x1d;

pub const CPU_TYPE_X86_64: i32 = 0x0100_0007;
pub const CPU_TYPE_ARM64: i32 = 0x0100_000c;
pub const CPU_SUBTYPE_X86_64_ALL: i32 = 3;
pub const CPU_SUBTYPE_ARM64_ALL: i32 = 0;
pub const CPU_SUBTYPE_ARM64E: i32 = 2;
/// The capability bits of `cpusubtype` (arm64e's pointer-authentication ABI
/// version lives there).
pub const CPU_SUBTYPE_MASK: i32 = 0xff00_0000_u32 as i32;

pub const HEADER_SIZE: usize = 32;
pub const SEGMENT_COMMAND_SIZE: usize = 72;
pub const SECTION_SIZE: usize = 80;
pub const LINKEDIT_DATA_SIZE: usize = 16;
pub const FAT_HEADER_SIZE: usize = 8;
pub const FAT_ARCH_SIZE: usize = 20;
pub const FAT_ARCH_64_SIZE: usize = 32;

/// More fat entries than this is not a Mach-O: Java class files share the
/// fat magic, and their "count" is the class file version (45 and up).
pub const MAX_FAT_ARCHES: u32 = 30;

/// A slice's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Arm64,
    Arm64e,
    Other { cputype: i32, cpusubtype: i32 },
}

impl Arch {
    pub fn from_cpu(cputype: i32, cpusubtype: i32) -> Arch {
        match (cputype, cpusubtype & !CPU_SUBTYPE_MASK) {
            (CPU_TYPE_X86_64, _) => Arch::X86_64,
            (CPU_TYPE_ARM64, CPU_SUBTYPE_ARM64E) => Arch::Arm64e,
            (CPU_TYPE_ARM64, _) => Arch::Arm64,
            _ => Arch::Other {
                cputype,
                cpusubtype,
            },
        }
    }

    /// `(cputype, cpusubtype)` as written in a header.
    pub fn cpu(self) -> (i32, i32) {
        match self {
            Arch::X86_64 => (CPU_TYPE_X86_64, CPU_SUBTYPE_X86_64_ALL),
            Arch::Arm64 => (CPU_TYPE_ARM64, CPU_SUBTYPE_ARM64_ALL),
            Arch::Arm64e => (CPU_TYPE_ARM64, CPU_SUBTYPE_ARM64E),
            Arch::Other {
                cputype,
                cpusubtype,
            } => (cputype, cpusubtype),
        }
    }

    /// The page size of the architecture's VM (segment alignment).
    pub fn page_size(self) -> u64 {
        match self {
            Arch::Arm64 | Arch::Arm64e => 0x4000,
            _ => 0x1000,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arch::X86_64 => f.write_str("x86_64"),
            Arch::Arm64 => f.write_str("arm64"),
            Arch::Arm64e => f.write_str("arm64e"),
            Arch::Other {
                cputype,
                cpusubtype,
            } => write!(f, "cpu {cputype:#x}/{cpusubtype:#x}"),
        }
    }
}

/// What a file is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Thin,
    Fat,
    Script,
    /// A 32-bit or big-endian Mach-O: recognised, not handled.
    UnsupportedMachO,
    Other,
}

pub fn kind(data: &[u8]) -> Kind {
    if data.starts_with(b"#!") {
        return Kind::Script;
    }
    let (Some(le), Some(be)) = (read_u32_le(data, 0), read_u32_be(data, 0)) else {
        return Kind::Other;
    };
    match (le, be) {
        (MH_MAGIC_64, _) => Kind::Thin,
        (MH_MAGIC | MH_CIGAM | MH_CIGAM_64, _) => Kind::UnsupportedMachO,
        (_, FAT_MAGIC | FAT_MAGIC_64) => match read_u32_be(data, 4) {
            Some(n) if n <= MAX_FAT_ARCHES => Kind::Fat,
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

/// One entry of a fat file's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatArch {
    pub arch: Arch,
    pub cputype: i32,
    pub cpusubtype: i32,
    pub offset: u64,
    pub size: u64,
    /// log2 of the slice's alignment in the file.
    pub align: u32,
}

/// Reads a fat header and table; every slice lies inside the file, after
/// the table.
pub fn parse_fat(data: &[u8]) -> Result<Vec<FatArch>, Error> {
    let magic = be32(data, 0, "fat magic")?;
    let is64 = match magic {
        FAT_MAGIC => false,
        FAT_MAGIC_64 => true,
        _ => return Err(malformed("not a fat file")),
    };
    let count = be32(data, 4, "fat arch count")?;
    if count > MAX_FAT_ARCHES {
        return Err(malformed(format!("{count} fat slices")));
    }
    let entry = if is64 {
        FAT_ARCH_64_SIZE
    } else {
        FAT_ARCH_SIZE
    };
    let table_end = FAT_HEADER_SIZE + entry * count as usize;
    let mut arches = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let at = FAT_HEADER_SIZE + i * entry;
        let cputype = be32(data, at, "fat cputype")? as i32;
        let cpusubtype = be32(data, at + 4, "fat cpusubtype")? as i32;
        let (offset, size, align) = if is64 {
            (
                be64(data, at + 8, "fat offset")?,
                be64(data, at + 16, "fat size")?,
                be32(data, at + 24, "fat align")?,
            )
        } else {
            (
                u64::from(be32(data, at + 8, "fat offset")?),
                u64::from(be32(data, at + 12, "fat size")?),
                be32(data, at + 16, "fat align")?,
            )
        };
        let end = offset
            .checked_add(size)
            .ok_or_else(|| malformed("fat slice end overflows"))?;
        if offset < table_end as u64 || end > data.len() as u64 || align > 20 {
            return Err(malformed(format!(
                "fat slice {i} ({offset:#x}+{size:#x}, align 2^{align}) outside the file"
            )));
        }
        arches.push(FatArch {
            arch: Arch::from_cpu(cputype, cpusubtype),
            cputype,
            cpusubtype,
            offset,
            size,
            align,
        });
    }
    Ok(arches)
}

/// The bytes of each slice of a thin or fat file, with its architecture.
pub fn slices(data: &[u8]) -> Result<Vec<(Arch, &[u8])>, Error> {
    match kind(data) {
        Kind::Thin => {
            let header = Header::parse(data)?;
            Ok(vec![(header.arch, data)])
        }
        Kind::Fat => parse_fat(data)?
            .into_iter()
            .map(|a| {
                Ok((
                    a.arch,
                    &data[a.offset as usize..(a.offset + a.size) as usize],
                ))
            })
            .collect(),
        Kind::UnsupportedMachO => Err(Error::Unsupported("32-bit or big-endian Mach-O".to_owned())),
        Kind::Script | Kind::Other => Err(malformed("not a Mach-O file")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub arch: Arch,
    pub cputype: i32,
    pub cpusubtype: i32,
    pub filetype: u32,
    pub ncmds: u32,
    pub sizeofcmds: u32,
    pub flags: u32,
}

impl Header {
    pub fn parse(data: &[u8]) -> Result<Header, Error> {
        match le32(data, 0, "magic")? {
            MH_MAGIC_64 => {}
            MH_MAGIC | MH_CIGAM | MH_CIGAM_64 => {
                return Err(Error::Unsupported("32-bit or big-endian Mach-O".to_owned()))
            }
            other => return Err(malformed(format!("bad Mach-O magic {other:#x}"))),
        }
        let cputype = le32(data, 4, "cputype")? as i32;
        let cpusubtype = le32(data, 8, "cpusubtype")? as i32;
        Ok(Header {
            arch: Arch::from_cpu(cputype, cpusubtype),
            cputype,
            cpusubtype,
            filetype: le32(data, 12, "filetype")?,
            ncmds: le32(data, 16, "ncmds")?,
            sizeofcmds: le32(data, 20, "sizeofcmds")?,
            flags: le32(data, 24, "flags")?,
        })
    }
}

/// One load command: where it is in the slice, its `cmd` and `cmdsize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadCommand {
    pub offset: usize,
    pub cmd: u32,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub sectname: String,
    pub segname: String,
    pub offset: u32,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Offset of the `LC_SEGMENT_64` command in the slice.
    pub cmd_offset: usize,
    pub name: String,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
    pub sections: Vec<Section>,
}

/// `LC_CODE_SIGNATURE`: where the signature blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSignatureCommand {
    pub cmd_offset: usize,
    pub dataoff: u32,
    pub datasize: u32,
}

/// A parsed 64-bit Mach-O slice.
#[derive(Debug, Clone)]
pub struct MachO<'a> {
    pub data: &'a [u8],
    pub header: Header,
    pub commands: Vec<LoadCommand>,
    pub segments: Vec<Segment>,
    pub code_signature: Option<CodeSignatureCommand>,
}

impl<'a> MachO<'a> {
    pub fn parse(data: &'a [u8]) -> Result<MachO<'a>, Error> {
        let header = Header::parse(data)?;
        let cmds_end = HEADER_SIZE
            .checked_add(header.sizeofcmds as usize)
            .filter(|end| *end <= data.len())
            .ok_or_else(|| malformed("load commands run past the end of the file"))?;
        if header.ncmds as usize > header.sizeofcmds as usize / 8 {
            return Err(malformed(format!(
                "{} load commands cannot fit in {} bytes",
                header.ncmds, header.sizeofcmds
            )));
        }
        let mut commands = Vec::with_capacity(header.ncmds as usize);
        let mut segments = Vec::new();
        let mut code_signature = None;
        let mut at = HEADER_SIZE;
        for i in 0..header.ncmds {
            let cmd = le32(data, at, "cmd")?;
            let size = le32(data, at + 4, "cmdsize")? as usize;
            if size < 8 || at + size > cmds_end {
                return Err(malformed(format!(
                    "load command {i} ({cmd:#x}) has size {size}, past the load commands"
                )));
            }
            let body = &data[at..at + size];
            match cmd {
                LC_SEGMENT_64 => segments.push(parse_segment(body, at, data.len())?),
                LC_CODE_SIGNATURE => {
                    if size < LINKEDIT_DATA_SIZE {
                        return Err(malformed("short LC_CODE_SIGNATURE"));
                    }
                    if code_signature.is_some() {
                        return Err(malformed("two LC_CODE_SIGNATURE commands"));
                    }
                    let dataoff = le32(body, 8, "dataoff")?;
                    let datasize = le32(body, 12, "datasize")?;
                    if u64::from(dataoff) + u64::from(datasize) > data.len() as u64 {
                        return Err(malformed("code signature outside the file"));
                    }
                    code_signature = Some(CodeSignatureCommand {
                        cmd_offset: at,
                        dataoff,
                        datasize,
                    });
                }
                _ => {}
            }
            commands.push(LoadCommand {
                offset: at,
                cmd,
                size,
            });
            at += size;
        }
        Ok(MachO {
            data,
            header,
            commands,
            segments,
            code_signature,
        })
    }

    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// The signature blob, when the slice has one.
    pub fn signature_bytes(&self) -> Option<&'a [u8]> {
        let cs = self.code_signature?;
        let start = cs.dataoff as usize;
        self.data.get(start..start + cs.datasize as usize)
    }

    /// Where the load commands end (the header included), as `sizeofcmds`
    /// says.
    pub fn commands_end(&self) -> usize {
        HEADER_SIZE + self.header.sizeofcmds as usize
    }

    /// Where the last load command ends: a new command goes here.
    /// `sizeofcmds` may promise more (slack the walk of `ncmds` commands
    /// never reaches), and a command written after the slack would be
    /// read from the slack's bytes.
    pub fn last_command_end(&self) -> usize {
        self.commands
            .last()
            .map_or(HEADER_SIZE, |last| last.offset + last.size)
    }

    /// The first byte of file content after the load commands: the lowest
    /// non-zero section or segment offset (what the load commands may grow
    /// into).
    pub fn first_content_offset(&self) -> usize {
        self.segments
            .iter()
            .flat_map(|s| {
                let seg = (s.filesize > 0 && s.fileoff > 0).then_some(s.fileoff);
                s.sections
                    .iter()
                    .filter(|sect| sect.offset > 0)
                    .map(|sect| u64::from(sect.offset))
                    .chain(seg)
            })
            .min()
            .map_or(self.data.len(), |o| o as usize)
            // Section offsets are not checked against the file's length.
            .min(self.data.len())
    }
}

fn parse_segment(body: &[u8], cmd_offset: usize, file_len: usize) -> Result<Segment, Error> {
    if body.len() < SEGMENT_COMMAND_SIZE {
        return Err(malformed("short LC_SEGMENT_64"));
    }
    let name = fixed_name(&body[8..24]);
    let fileoff = le64(body, 40, "fileoff")?;
    let filesize = le64(body, 48, "filesize")?;
    if fileoff
        .checked_add(filesize)
        .is_none_or(|end| end > file_len as u64)
    {
        return Err(malformed(format!("segment {name} outside the file")));
    }
    let nsects = le32(body, 64, "nsects")? as usize;
    if nsects > (body.len() - SEGMENT_COMMAND_SIZE) / SECTION_SIZE {
        return Err(malformed(format!(
            "segment {name} has {nsects} sections, more than its command holds"
        )));
    }
    let sections = (0..nsects)
        .map(|i| {
            let s = SEGMENT_COMMAND_SIZE + i * SECTION_SIZE;
            Ok(Section {
                sectname: fixed_name(&body[s..s + 16]),
                segname: fixed_name(&body[s + 16..s + 32]),
                size: le64(body, s + 40, "section size")?,
                offset: le32(body, s + 48, "section offset")?,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Segment {
        cmd_offset,
        name,
        vmaddr: le64(body, 24, "vmaddr")?,
        vmsize: le64(body, 32, "vmsize")?,
        fileoff,
        filesize,
        sections,
    })
}

/// A 16-byte, NUL-padded name.
fn fixed_name(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

pub(crate) fn malformed(what: impl Into<String>) -> Error {
    Error::Malformed(what.into())
}

pub(crate) fn read_u32_le(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(crate) fn read_u32_be(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(crate) fn le32(data: &[u8], at: usize, what: &str) -> Result<u32, Error> {
    read_u32_le(data, at).ok_or_else(|| malformed(format!("{what} at {at:#x} past the end")))
}

pub(crate) fn le64(data: &[u8], at: usize, what: &str) -> Result<u64, Error> {
    at.checked_add(8)
        .and_then(|end| data.get(at..end))
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| malformed(format!("{what} at {at:#x} past the end")))
}

pub(crate) fn be32(data: &[u8], at: usize, what: &str) -> Result<u32, Error> {
    read_u32_be(data, at).ok_or_else(|| malformed(format!("{what} at {at:#x} past the end")))
}

pub(crate) fn be64(data: &[u8], at: usize, what: &str) -> Result<u64, Error> {
    at.checked_add(8)
        .and_then(|end| data.get(at..end))
        .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| malformed(format!("{what} at {at:#x} past the end")))
}

pub(crate) fn put_le32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_le64(data: &mut [u8], at: usize, value: u64) {
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}
