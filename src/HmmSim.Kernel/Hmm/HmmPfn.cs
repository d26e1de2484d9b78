namespace HmmSim.Kernel;

/// <summary>HMM_PFN_* (include/linux/hmm.h). One layout serves both designs and the P2P series:
/// DEVICE_PRIVATE (the redesign) and ALLOW_P2P (the P2P series) both sat on BITS_PER_LONG-7 in
/// their own series, so ALLOW_P2P moves to BITS_PER_LONG-8 and the order field below it
/// (docs/fidelity.md).</summary>
public static class HmmPfn
{
    public const ulong Valid = 1UL << 63;
    public const ulong Write = 1UL << 62;
    public const ulong Error = 1UL << 61;
    public const ulong DmaMapped = 1UL << 60;
    public const ulong P2pDma = 1UL << 59;
    public const ulong P2pDmaBus = 1UL << 58;
    /// <summary>The pfn field holds a device-private offset (the redesign).</summary>
    public const ulong DevicePrivate = 1UL << 57;
    /// <summary>Input: the caller accepts a P2PDMA alias of another device's private page.</summary>
    public const ulong AllowP2p = 1UL << 56;
    public const int OrderShift = 51;
    public const ulong OrderMask = 0x1FUL << OrderShift;
    public const ulong ReqFault = Valid;
    public const ulong ReqWrite = Write;
    public const ulong InoutFlags = DmaMapped | P2pDma | P2pDmaBus;
    /// <summary>HMM_PFN_FLAGS: everything at or above the order field.</summary>
    public const ulong Flags = ~((1UL << OrderShift) - 1);

    public static int ToMapOrder(ulong hmmPfn) => (int)((hmmPfn >> OrderShift) & 0x1F);
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
    public required MmuIntervalNotifier Notifier { get; init; }
    public long NotifierSeq { get; set; }
    public ulong Start { get; set; }
    public ulong End { get; set; }
    public required ulong[] HmmPfns { get; init; }
    public ulong DefaultFlags { get; set; }
    public ulong PfnFlagsMask { get; set; }
    /// <summary>Compared with pgmap->owner: device-private pages of this owner are reported, not faulted.</summary>
    public object? DevPrivateOwner { get; set; }
}
