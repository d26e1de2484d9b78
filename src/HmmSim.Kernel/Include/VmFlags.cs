namespace HmmSim.Kernel;

/// <summary>vm_area_struct.vm_flags, with the kernel's bit values (include/linux/mm.h).</summary>
[Flags]
public enum VmFlags : ulong
{
    /// <summary>VM_NONE.</summary>
    None = 0,
    /// <summary>VM_READ: the mapping is readable now.</summary>
    Read = 0x1,
    /// <summary>VM_WRITE: the mapping is writable now.</summary>
    Write = 0x2,
    /// <summary>VM_EXEC: the mapping is executable now.</summary>
    Exec = 0x4,
    /// <summary>VM_SHARED: writes go to the shared object (MAP_SHARED), no COW.</summary>
    Shared = 0x8,
    /// <summary>VM_MAYREAD: mprotect may add PROT_READ.</summary>
    MayRead = 0x10,
    /// <summary>VM_MAYWRITE: mprotect may add PROT_WRITE.</summary>
    MayWrite = 0x20,
    /// <summary>VM_MAYEXEC: mprotect may add PROT_EXEC.</summary>
    MayExec = 0x40,
    /// <summary>VM_MAYSHARE: the mapping was created MAP_SHARED.</summary>
    MayShare = 0x80,
    /// <summary>VM_GROWSDOWN: a stack that grows down.</summary>
    GrowsDown = 0x100,
    /// <summary>VM_UFFD_MISSING: userfaultfd missing-page tracking.</summary>
    UffdMissing = 0x200,
    /// <summary>VM_PFNMAP: raw pfns without struct page; hmm_range_fault reports HMM_PFN_ERROR.</summary>
    PfnMap = 0x400,
    /// <summary>VM_LOCKED: mlocked.</summary>
    Locked = 0x2000,
    /// <summary>VM_IO: memory-mapped I/O; hmm_range_fault and GUP refuse it.</summary>
    Io = 0x4000,
    /// <summary>VM_SEQ_READ: MADV_SEQUENTIAL.</summary>
    SeqRead = 0x8000,
    /// <summary>VM_RAND_READ: MADV_RANDOM.</summary>
    RandRead = 0x10000,
    /// <summary>VM_DONTCOPY: MADV_DONTFORK, the child does not inherit the mapping.</summary>
    DontCopy = 0x20000,
    /// <summary>VM_DONTEXPAND: mremap may not grow the mapping.</summary>
    DontExpand = 0x40000,
    /// <summary>VM_LOCKONFAULT: mlock2(MLOCK_ONFAULT).</summary>
    LockOnFault = 0x80000,
    /// <summary>VM_ACCOUNT: committed memory accounted.</summary>
    Account = 0x100000,
    /// <summary>VM_NORESERVE: MAP_NORESERVE.</summary>
    NoReserve = 0x200000,
    /// <summary>VM_HUGETLB: a hugetlbfs mapping.</summary>
    Hugetlb = 0x400000,
    /// <summary>VM_SYNC: MAP_SYNC.</summary>
    Sync = 0x800000,
    /// <summary>VM_WIPEONFORK: MADV_WIPEONFORK, the child sees zeroes.</summary>
    WipeOnFork = 0x2000000,
    /// <summary>VM_DONTDUMP: MADV_DONTDUMP.</summary>
    DontDump = 0x4000000,
    /// <summary>VM_SOFTDIRTY: the whole VMA counts as soft-dirty (/proc/pid/pagemap).</summary>
    SoftDirty = 0x8000000,
    /// <summary>VM_MIXEDMAP: a mix of struct-page and raw-pfn mappings (vm_insert_page).</summary>
    MixedMap = 0x10000000,
    /// <summary>VM_HUGEPAGE: MADV_HUGEPAGE, THP allowed even when the policy is madvise.</summary>
    HugePage = 0x20000000,
    /// <summary>VM_NOHUGEPAGE: MADV_NOHUGEPAGE, no THP in this VMA.</summary>
    NoHugePage = 0x40000000,
    /// <summary>VM_MERGEABLE: MADV_MERGEABLE (KSM).</summary>
    Mergeable = 0x80000000,
    /// <summary>VM_ACCESS_FLAGS: VM_READ | VM_WRITE | VM_EXEC.</summary>
    AccessFlags = Read | Write | Exec,
}
