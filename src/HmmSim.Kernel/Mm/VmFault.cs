namespace HmmSim.Kernel;

/// <summary>FAULT_FLAG_* (include/linux/mm_types.h).</summary>
[Flags]
internal enum FaultFlags : uint
{
    None = 0,
    Write = 1 << 0,
    MkWrite = 1 << 1,
    AllowRetry = 1 << 2,
    RetryNoWait = 1 << 3,
    Killable = 1 << 4,
    Tried = 1 << 5,
    User = 1 << 6,
    Remote = 1 << 7,
    Instruction = 1 << 8,
    Interruptible = 1 << 9,
    Unshare = 1 << 10,
    Orig_Pte_Valid = 1 << 11,
    VmaLock = 1 << 12,
}

/// <summary>vm_fault_t bits (include/linux/mm_types.h).</summary>
[Flags]
public enum VmFaultResult : uint
{
    /// <summary>0: the fault was handled.</summary>
    None = 0,
    /// <summary>VM_FAULT_OOM: out of memory (a migrate_to_ram that cannot allocate returns this).</summary>
    Oom = 0x000001,
    /// <summary>VM_FAULT_SIGBUS: the access gets SIGBUS (a migrate_to_ram that cannot migrate returns this).</summary>
    Sigbus = 0x000002,
    /// <summary>VM_FAULT_MAJOR: the fault needed I/O or a device copy.</summary>
    Major = 0x000004,
    /// <summary>VM_FAULT_HWPOISON: a poisoned page.</summary>
    HwPoison = 0x000010,
    /// <summary>VM_FAULT_HWPOISON_LARGE: a poisoned huge page.</summary>
    HwPoisonLarge = 0x000020,
    /// <summary>VM_FAULT_SIGSEGV: the access gets SIGSEGV.</summary>
    Sigsegv = 0x000040,
    /// <summary>VM_FAULT_NOPAGE: the handler installed the PTE itself.</summary>
    NoPage = 0x000100,
    /// <summary>VM_FAULT_LOCKED: the handler returns the page locked.</summary>
    Locked = 0x000200,
    /// <summary>VM_FAULT_RETRY: the handler dropped the lock; retry the fault.</summary>
    Retry = 0x000400,
    /// <summary>VM_FAULT_FALLBACK: a huge fault fell back to base pages.</summary>
    Fallback = 0x000800,
    /// <summary>VM_FAULT_DONE_COW: the handler did the COW itself.</summary>
    DoneCow = 0x001000,
    /// <summary>VM_FAULT_NEEDDSYNC: a DAX sync fault must fsync first.</summary>
    NeedDsync = 0x002000,
    /// <summary>VM_FAULT_COMPLETED: the fault completed with the mmap lock dropped.</summary>
    Completed = 0x004000,
    /// <summary>VM_FAULT_ERROR: any of the error bits.</summary>
    Error = Oom | Sigbus | Sigsegv | HwPoison | HwPoisonLarge,
}

/// <summary>struct vm_fault: what a fault handler is told. A struct passed by reference through the
/// fault path, so a fault allocates nothing.</summary>
public struct VmFault
{
    internal VmFault(Vma vma, ulong address, FaultFlags flags)
    {
        Vma = vma;
        Address = address;
        Flags = flags;
    }

    /// <summary>vmf->vma: the VMA the fault is in.</summary>
    public Vma Vma { get; }
    /// <summary>The faulting address, page aligned.</summary>
    public ulong Address { get; }
    internal FaultFlags Flags { get; }
    /// <summary>vmf->page: for a device-private fault, the (locked) device page.</summary>
    public Page Page { get; internal set; }
    /// <summary>The fault is on a PMD entry (vmf->pte is NULL): a device-private THP migrates whole.</summary>
    public bool PmdFault { get; internal set; }
    /// <summary>The PTE value seen when the fault began (vmf->orig_pte).</summary>
    internal ulong OrigPte { get; set; }
}
