namespace HmmSim;

// The enums and records of shared/API.md. Values with a Linux counterpart are the Linux values.

/// <summary>The kernel's error numbers (include/uapi/asm-generic/errno-base.h, errno.h), with the
/// Linux values. A system call or ioctl returns one where the kernel's returns -errno; <see cref="None"/>
/// is success. Misuse of the C# API itself (null arguments, a disposed object) throws instead.</summary>
public enum Errno
{
    /// <summary>0: success.</summary>
    None = 0,
    /// <summary>EPERM (1), operation not permitted: HMM_DMIRROR_CHECK_EXCLUSIVE when the mirror still maps a
    /// page of the range atomically (its exclusive access was revoked by a CPU access).</summary>
    EPERM = 1,
    /// <summary>ENOENT (2), no such file or directory: opening a /dev/hmm_dmirrorN unit that did not probe.</summary>
    ENOENT = 2,
    /// <summary>ESRCH (3), no such process.</summary>
    ESRCH = 3,
    /// <summary>EINTR (4), interrupted system call.</summary>
    EINTR = 4,
    /// <summary>EIO (5), I/O error.</summary>
    EIO = 5,
    /// <summary>ENXIO (6), no such device or address.</summary>
    ENXIO = 6,
    /// <summary>E2BIG (7), argument list too long.</summary>
    E2BIG = 7,
    /// <summary>EBADF (9), bad file descriptor: mmap without MAP_ANONYMOUS and without a file.</summary>
    EBADF = 9,
    /// <summary>EAGAIN (11), try again.</summary>
    EAGAIN = 11,
    /// <summary>ENOMEM (12), out of memory, or (mmap, mprotect, munmap, mremap) a range with no mapping
    /// or no room in the address space; a dmirror migration whose device allocation failed
    /// (HMM_DMIRROR_FLAG_FAIL_ALLOC).</summary>
    ENOMEM = 12,
    /// <summary>EACCES (13), permission denied: mprotect asking for more than the mapping's VM_MAY* allow
    /// (PROT_WRITE on a read-only shared file mapping).</summary>
    EACCES = 13,
    /// <summary>EFAULT (14), bad address: mremap of a range not covered by one mapping; a dmirror ioctl
    /// whose buffer is smaller than npages pages (or npages bytes for SNAPSHOT), or whose range
    /// hmm_range_fault could not fault in (no VMA, no permission, an exited process).</summary>
    EFAULT = 14,
    /// <summary>EBUSY (16), device or resource busy: hmm_range_fault kept racing with invalidations
    /// (HMM_RANGE_DEFAULT_TIMEOUT in the driver).</summary>
    EBUSY = 16,
    /// <summary>EEXIST (17), file exists: mmap with MAP_FIXED_NOREPLACE over an existing mapping.</summary>
    EEXIST = 17,
    /// <summary>ENODEV (19), no such device.</summary>
    ENODEV = 19,
    /// <summary>EINVAL (22), invalid argument: an unaligned address or offset, a zero length, bad flags, a
    /// hugetlb range not on a huge-page boundary, an unknown madvise advice; a dmirror ioctl with an
    /// unaligned or overflowing range, a range outside readable VMAs (migrations), or flags 0.</summary>
    EINVAL = 22,
    /// <summary>EFBIG (27), file too large: <see cref="ShmemFile.Pwrite"/> past the end of the file.</summary>
    EFBIG = 27,
    /// <summary>ENOSPC (28), no space left on device: <see cref="ShmemFile.Pwrite"/> when no page could be allocated.</summary>
    ENOSPC = 28,
    /// <summary>ERANGE (34), result out of range.</summary>
    ERANGE = 34,
    /// <summary>EOVERFLOW (75), value too large: mmap whose offset plus length overflows the page offset.</summary>
    EOVERFLOW = 75,
    /// <summary>EOPNOTSUPP (95), operation not supported.</summary>
    EOPNOTSUPP = 95,
    /// <summary>EHWPOISON (133), memory page has a hardware error.</summary>
    EHWPOISON = 133,
}

/// <summary>PROT_* (include/uapi/asm-generic/mman-common.h): the access a mapping allows.</summary>
[Flags]
public enum Prot
{
    /// <summary>PROT_NONE: no access; any load or store raises SIGSEGV.</summary>
    None = 0,
    /// <summary>PROT_READ: loads allowed.</summary>
    Read = 1,
    /// <summary>PROT_WRITE: stores allowed (the model, like x86, does not grant write without read for faults).</summary>
    Write = 2,
    /// <summary>PROT_EXEC: instruction fetch allowed (recorded in vm_flags; the model executes nothing).</summary>
    Exec = 4,
}

/// <summary>MAP_* (include/uapi/asm-generic/mman-common.h, linux/mman.h): mmap flags, with the Linux values.
/// Exactly one of <see cref="Shared"/> and <see cref="Private"/> is required.</summary>
[Flags]
public enum MapFlags
{
    /// <summary>No flag (mmap then fails with EINVAL: a mapping type is required).</summary>
    None = 0,
    /// <summary>MAP_SHARED: stores reach the file (or shared anonymous memory) and every other mapping of it.</summary>
    Shared = 0x01,
    /// <summary>MAP_PRIVATE: copy-on-write; stores stay in this process (and are copied again on fork).</summary>
    Private = 0x02,
    /// <summary>MAP_FIXED: map exactly at addr, replacing whatever was mapped there.</summary>
    Fixed = 0x10,
    /// <summary>MAP_ANONYMOUS: zero-filled memory backed by no file (pass no <see cref="ShmemFile"/>).</summary>
    Anonymous = 0x20,
    /// <summary>MAP_POPULATE: fault every page in at mmap time.</summary>
    Populate = 0x8000,
    /// <summary>MAP_HUGETLB: anonymous memory from the hugetlb pool (MachineConfig.HugetlbPages 2 MiB pages);
    /// the length is rounded up to 2 MiB.</summary>
    Hugetlb = 0x40000,
    /// <summary>MAP_FIXED_NOREPLACE: map exactly at addr, but fail with EEXIST rather than replace a mapping.</summary>
    FixedNoReplace = 0x100000,
}

/// <summary>MADV_* (include/uapi/asm-generic/mman-common.h): the madvise advice the model implements,
/// with the Linux values; any other value fails with EINVAL.</summary>
public enum Advice
{
    /// <summary>MADV_NORMAL: no special treatment (clears sequential/random hints).</summary>
    Normal = 0,
    /// <summary>MADV_RANDOM: expect random access (sets VM_RAND_READ; nothing in the model reads ahead).</summary>
    Random = 1,
    /// <summary>MADV_SEQUENTIAL: expect sequential access (sets VM_SEQ_READ).</summary>
    Sequential = 2,
    /// <summary>MADV_WILLNEED: expect access soon (read-ahead; nothing to do in the model).</summary>
    WillNeed = 3,
    /// <summary>MADV_DONTNEED: zap the range now; private anonymous memory reads back as zeroes,
    /// device-private pages are freed with their entries.</summary>
    DontNeed = 4,
    /// <summary>MADV_FREE: private anonymous pages become lazily freeable (EINVAL on other mappings); with no
    /// reclaim in the model they keep their data until written or zapped.</summary>
    Free = 8,
    /// <summary>MADV_HUGEPAGE: allow THP here even when the policy is madvise (VM_HUGEPAGE).</summary>
    HugePage = 14,
    /// <summary>MADV_NOHUGEPAGE: no THP in this range (VM_NOHUGEPAGE).</summary>
    NoHugePage = 15,
    /// <summary>MADV_COLLAPSE: collapse the range into PMD THPs synchronously (khugepaged's work, done now).</summary>
    Collapse = 25,
}

/// <summary>MREMAP_* (include/uapi/linux/mman.h): mremap flags, with the Linux values.</summary>
[Flags]
public enum MremapFlags
{
    /// <summary>Resize in place only; ENOMEM if the mapping cannot grow where it is.</summary>
    None = 0,
    /// <summary>MREMAP_MAYMOVE: the kernel may move the mapping to grow it (page tables move, no copy).</summary>
    MayMove = 1,
    /// <summary>MREMAP_FIXED: move to newAddr exactly, unmapping what was there (requires MayMove).</summary>
    Fixed = 2,
    /// <summary>MREMAP_DONTUNMAP: move the pages but leave the old range mapped and empty (requires MayMove and equal sizes).</summary>
    DontUnmap = 4,
}

/// <summary>The CPU architecture whose page-table formats the machine uses.</summary>
public enum Architecture
{
    /// <summary>CONFIG_X86_64: 4-level page tables, MAX_PHYSMEM_BITS 46.</summary>
    X86_64,
    /// <summary>CONFIG_ARM64: 4 KiB granule, 4 levels, MAX_PHYSMEM_BITS 48.</summary>
    Arm64,
}

/// <summary>Where device-private pages get their identity (docs/designs.md).</summary>
public enum DevicePrivateDesign
{
    /// <summary>Today's kernel: memremap_pages over a range of physical address space taken with
    /// get_free_mem_region (shown in /proc/iomem); device-private pages have PFNs.</summary>
    PhysicalAddressSpace,
    /// <summary>The redesign: memremap_device_private_pagemap over a separate device-private address
    /// space; device-private pages have offsets, not PFNs, and use no physical address space.</summary>
    DeviceAddressSpace,
}

/// <summary>A range of physical address space, in bytes.</summary>
/// <param name="Start">The first physical address.</param>
/// <param name="Length">The length in bytes.</param>
public readonly record struct PhysicalRange(ulong Start, ulong Length)
{
    /// <summary>The first byte after the range (Start + Length).</summary>
    public ulong End => Start + Length;
}

/// <summary>Where the dmirror units sit on PCI: behind one PCIe switch (peer-to-peer DMA works),
/// or on separate root ports of a host bridge that is not on the P2P whitelist.</summary>
public enum PciTopology
{
    /// <summary>Both units behind one PCIe switch: P2P DMA between them uses bus addresses (PCI_P2PDMA_MAP_BUS_ADDR).</summary>
    CommonSwitch,
    /// <summary>Each unit on its own root port of a non-whitelisted host bridge: no P2P path (PCI_P2PDMA_MAP_NOT_SUPPORTED).</summary>
    SeparateRootPorts,
}

/// <summary>/sys/kernel/mm/transparent_hugepage/enabled.</summary>
public enum ThpPolicy
{
    /// <summary>always: anonymous faults in any suitably aligned range try a PMD THP.</summary>
    Always,
    /// <summary>madvise: only ranges with MADV_HUGEPAGE get THPs (the kernel's default).</summary>
    Madvise,
    /// <summary>never: no THP at all (MADV_COLLAPSE then fails with EINVAL).</summary>
    Never,
}

/// <summary>HMM_DMIRROR_PROT_* (lib/test_hmm_uapi.h): one SNAPSHOT byte per page.</summary>
public enum DmirrorProt : byte
{
    /// <summary>Not mapped (or an entry the device cannot use).</summary>
    None = 0x00,
    /// <summary>Mapped readable.</summary>
    Read = 0x01,
    /// <summary>Mapped writable.</summary>
    Write = 0x02,
    /// <summary>Mapped by a PMD (a 2 MiB entry).</summary>
    Pmd = 0x04,
    /// <summary>Mapped by a PUD (a 1 GiB entry).</summary>
    Pud = 0x08,
    /// <summary>The shared zero page.</summary>
    Zero = 0x10,
    /// <summary>A device-private page of this device.</summary>
    DevPrivateLocal = 0x20,
    /// <summary>A device-private page of another device.</summary>
    DevPrivateRemote = 0x30,
    /// <summary>A device-coherent page of this device.</summary>
    DevCoherentLocal = 0x40,
    /// <summary>A device-coherent page of another device.</summary>
    DevCoherentRemote = 0x50,
    /// <summary>hmm_range_fault reported an error for the page.</summary>
    Error = 0xFF,
}

/// <summary>HMM_DMIRROR_FLAG_*.</summary>
[Flags]
public enum DmirrorFlags : ulong
{
    /// <summary>No flag (HMM_DMIRROR_FLAGS with 0 fails with EINVAL, as in the kernel).</summary>
    None = 0,
    /// <summary>HMM_DMIRROR_FLAG_FAIL_ALLOC: the next device (or system) page allocation fails, once.</summary>
    FailAlloc = 1,
    /// <summary>HmmSim's addition: this open file's faults ask hmm_range_fault for a P2P alias of another
    /// device's private page (HMM_PFN_ALLOW_P2P) instead of migrating it, and fall back to migration
    /// when the alias cannot be DMA-mapped.</summary>
    AllowP2P = 2,
}

/// <summary>The outputs of one ioctl: its errno, and cmd.cpages and cmd.faults (copied back only on success).</summary>
/// <param name="Error">The ioctl's errno (<see cref="Errno.None"/> on success).</param>
/// <param name="CPages">struct hmm_dmirror_cmd.cpages: pages the command handled; what counts is per
/// ioctl (see each <see cref="Dmirror"/> method). 0 on failure.</param>
/// <param name="Faults">struct hmm_dmirror_cmd.faults: how many times READ/WRITE had to fault the mirror. 0 on failure.</param>
public readonly record struct DmirrorResult(Errno Error, ulong CPages, ulong Faults);
