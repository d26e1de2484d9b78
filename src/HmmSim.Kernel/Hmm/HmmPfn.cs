namespace HmmSim.Kernel;

/// <summary>HMM_PFN_* (include/linux/hmm.h). One layout serves both designs and the P2P series:
/// DEVICE_PRIVATE (the redesign) and ALLOW_P2P (the P2P series) both sat on BITS_PER_LONG-7 in
/// their own series, so ALLOW_P2P moves to BITS_PER_LONG-8 and the order field below it
/// (docs/fidelity.md).</summary>
public static class HmmPfn
{
    /// <summary>HMM_PFN_VALID: output, the entry maps a page (the pfn field is meaningful); as input
    /// (HMM_PFN_REQ_FAULT) the caller needs the page present.</summary>
    public const ulong Valid = 1UL << 63;
    /// <summary>HMM_PFN_WRITE: output, the CPU mapping is writable; as input (HMM_PFN_REQ_WRITE) the
    /// caller needs it writable, so hmm_range_fault breaks COW.</summary>
    public const ulong Write = 1UL << 62;
    /// <summary>HMM_PFN_ERROR: output, the address cannot be mirrored (no VMA, VM_IO/VM_PFNMAP, a
    /// required fault that failed); hmm_range_fault then returns -EFAULT.</summary>
    public const ulong Error = 1UL << 61;
    /// <summary>HMM_PFN_DMA_MAPPED: in/out flag kept for the driver's DMA mapping state; hmm_range_fault preserves it.</summary>
    public const ulong DmaMapped = 1UL << 60;
    /// <summary>HMM_PFN_P2PDMA: in/out flag, the page is a P2PDMA page; hmm_range_fault preserves it.</summary>
    public const ulong P2pDma = 1UL << 59;
    /// <summary>HMM_PFN_P2PDMA_BUS: in/out flag, the P2PDMA page is reached by bus address; hmm_range_fault preserves it.</summary>
    public const ulong P2pDmaBus = 1UL << 58;
    /// <summary>The pfn field holds a device-private offset (the redesign).</summary>
    public const ulong DevicePrivate = 1UL << 57;
    /// <summary>HMM_PFN_ALLOW_P2P. Input: the caller accepts a P2PDMA alias of another device's private
    /// page. Its place with the default <see cref="HmmPfnLayout.Disjoint"/> layout; a driver asks
    /// <see cref="AllowP2pFor"/> for the value the running kernel was built with.</summary>
    public const ulong AllowP2p = 1UL << 56;

    /// <summary>HMM_PFN_ALLOW_P2P as the running kernel's hmm.h defines it: <see cref="AllowP2p"/>, or with
    /// both series applied as posted (<see cref="HmmPfnLayout.AsPosted"/>) BITS_PER_LONG-7, the bit
    /// <see cref="DevicePrivate"/> also uses. Every driver and hmm_range_fault use this value.</summary>
    public static ulong AllowP2pFor(KernelState kernel) =>
        kernel.Config.Variants.HmmPfnLayout == HmmPfnLayout.AsPosted ? DevicePrivate : AllowP2p;
    /// <summary>HMM_PFN_ORDER_SHIFT: the bit where the 5-bit mapping-order field starts.</summary>
    public const int OrderShift = 51;
    /// <summary>The 5-bit mapping-order field (the order of the CPU mapping: 9 for a PMD-mapped THP).</summary>
    public const ulong OrderMask = 0x1FUL << OrderShift;
    /// <summary>HMM_PFN_REQ_FAULT: input, fault the page in if it is not present (same bit as <see cref="Valid"/>).</summary>
    public const ulong ReqFault = Valid;
    /// <summary>HMM_PFN_REQ_WRITE: input, fault for write if the mapping is not writable (same bit as <see cref="Write"/>).</summary>
    public const ulong ReqWrite = Write;
    /// <summary>HMM_PFN_INOUT_FLAGS: the flags hmm_range_fault leaves as the caller set them.</summary>
    public const ulong InoutFlags = DmaMapped | P2pDma | P2pDmaBus;
    /// <summary>HMM_PFN_FLAGS: everything at or above the order field.</summary>
    public const ulong Flags = ~((1UL << OrderShift) - 1);

    /// <summary>hmm_pfn_to_map_order: the order of the CPU mapping an output entry came from
    /// (0 for a PTE, 9 for a PMD-mapped THP), so a driver can map the whole block at once.</summary>
    public static int ToMapOrder(ulong hmmPfn) => (int)((hmmPfn >> OrderShift) & 0x1F);
    /// <summary>The order field for <paramref name="order"/>, as hmm_vma_walk sets it on output (hmm_pfn_flags_order).</summary>
    public static ulong FromOrder(int order) => (ulong)order << OrderShift;

    /// <summary>hmm_pfn_to_page: through device_private_offset_to_page when the flag says so.</summary>
    public static Page ToPage(KernelState kernel, ulong hmmPfn)
    {
        ulong field = hmmPfn & ~Flags;
        return (hmmPfn & DevicePrivate) != 0
            ? kernel.Memmap.DevicePrivateOffsetToPage(new DevicePrivateIndex(field))
            : kernel.Memmap.PfnToPage(new Pfn(field));
    }

    /// <summary>The pfn field for a page: its PFN, or in the redesign its device-private offset (with the flag).</summary>
    public static ulong FromPage(Page page) => page.Section.InDevicePrivateSpace
        ? page.ToDevicePrivateIndex().Value | DevicePrivate
        : page.ToPfn().Value;
}

/// <summary>struct hmm_range.</summary>
public sealed class HmmRange
{
    /// <summary>hmm_range.notifier: the interval notifier whose sequence guards this snapshot.</summary>
    public required MmuIntervalNotifier Notifier { get; init; }
    /// <summary>hmm_range.notifier_seq: from mmu_interval_read_begin; hmm_range_fault returns -EBUSY
    /// when an invalidation has bumped it since.</summary>
    public long NotifierSeq { get; set; }
    /// <summary>hmm_range.start: first user virtual address (page aligned, inclusive).</summary>
    public ulong Start { get; set; }
    /// <summary>hmm_range.end: end user virtual address (page aligned, exclusive).</summary>
    public ulong End { get; set; }
    /// <summary>hmm_range.hmm_pfns: one entry per page of [Start, End): input request flags, output
    /// pfn (or device-private offset) and HMM_PFN_* flags.</summary>
    public required ulong[] HmmPfns { get; init; }
    /// <summary>hmm_range.default_flags: request flags (HMM_PFN_REQ_*) applied to every entry.</summary>
    public ulong DefaultFlags { get; set; }
    /// <summary>hmm_range.pfn_flags_mask: which per-entry input flags in <see cref="HmmPfns"/> are honoured
    /// on top of <see cref="DefaultFlags"/> (0: only the defaults).</summary>
    public ulong PfnFlagsMask { get; set; }
    /// <summary>Compared with pgmap->owner: device-private pages of this owner are reported, not faulted.</summary>
    public object? DevPrivateOwner { get; set; }
}
