namespace HmmSim.Kernel;

/// <summary>arm64 with 4 KiB pages, 48-bit VA and 48-bit PA, no LPA2 (arch/arm64/include/asm/
/// pgtable.h, pgtable-hwdef.h, pgtable-prot.h). Modelled without EPAN, MTE, BTI guarded pages,
/// POE and GCS; arm64 has no soft-dirty support, so the soft-dirty helpers are the generic stubs.</summary>
internal sealed class Arm64Arch : Arch
{
    public static readonly Arch Instance = new Arm64Arch();

    private Arm64Arch() { }

    // Hardware descriptor bits (pgtable-hwdef.h).
    public const ulong PteValid = 1UL << 0;
    public const ulong PteTableBit = 1UL << 1;          // set for a page/table, clear for a block
    public const ulong PteTypePage = 3UL;
    public const ulong PteAttrIndxMask = 7UL << 2;      // MT_NORMAL is index 0
    public const ulong PteUser = 1UL << 6;              // AP[1]
    public const ulong PteRdonly = 1UL << 7;            // AP[2]
    public const ulong PteShared = 3UL << 8;            // SH[1:0], inner shareable
    public const ulong PteAf = 1UL << 10;
    public const ulong PteNg = 1UL << 11;
    public const ulong PteGp = 1UL << 50;
    public const ulong PteDbm = 1UL << 51;
    public const ulong PteCont = 1UL << 52;
    public const ulong PtePxn = 1UL << 53;
    public const ulong PteUxn = 1UL << 54;
    public const ulong PtePoIdxMask = 7UL << 60;
    /// <summary>PTE_ADDR_MASK for 48-bit PA: output address bits 12..47.</summary>
    public const ulong PteAddrMask = ((1UL << 48) - 1) & ~(PageSize - 1);
    public const ulong PmdAddrMask = ((1UL << 48) - 1) & ~(PmdSize - 1);
    public const ulong PmdTypeMask = 3UL;
    public const ulong PmdTypeTable = 3UL;
    public const ulong PmdTypeSect = 1UL;

    // Software bits (pgtable-prot.h).
    public const ulong PteWriteBit = PteDbm;            // PTE_WRITE
    public const ulong PteDirtyBit = 1UL << 55;
    public const ulong PteSpecialBit = 1UL << 56;
    public const ulong PteUffdWp = 1UL << 58;
    /// <summary>PTE_PRESENT_INVALID: nG, meaningful only while PTE_VALID is clear (PROT_NONE).</summary>
    public const ulong PtePresentInvalid = PteNg;
    public const ulong PteSwpExclusiveBit = 1UL << 2;
    public const ulong PteSwpUffdWpBit = 1UL << 3;

    // Protections.
    public const ulong ProtDefault = PteTypePage | PteAf | PteShared;              // _PROT_DEFAULT
    public const ulong PageDefault = ProtDefault;                                  // | PTE_ATTRINDX(MT_NORMAL) = 0
    public const ulong PageNone = (PageDefault & ~PteValid) | PtePresentInvalid | PteRdonly | PteNg | PtePxn | PteUxn;
    public const ulong PageShared = PageDefault | PteUser | PteRdonly | PteNg | PtePxn | PteUxn | PteWriteBit;
    public const ulong PageSharedExec = PageDefault | PteUser | PteRdonly | PteNg | PtePxn | PteWriteBit;
    public const ulong PageReadonly = PageDefault | PteUser | PteRdonly | PteNg | PtePxn | PteUxn;
    public const ulong PageReadonlyExec = PageDefault | PteUser | PteRdonly | PteNg | PtePxn;

    /// <summary>What pte_modify takes from the new protection.</summary>
    public const ulong PteModifyMask = PteUser | PtePxn | PteUxn | PteRdonly | PtePresentInvalid | PteValid
        | PteWriteBit | PteGp | PteAttrIndxMask | PtePoIdxMask;

    // Swap PTE layout: type in bits 6..10, offset in bits 12..61; bits 0..1 and 11 stay clear.
    public const int SwpTypeShift = 6;
    public const int SwpTypeBits = 5;
    public const ulong SwpTypeMask = (1UL << SwpTypeBits) - 1;
    public const int SwpOffsetShift = 12;
    public const int SwpOffsetBits = 50;
    public const ulong SwpOffsetMask = (1UL << SwpOffsetBits) - 1;

    private static readonly ulong[] _protectionMap =
    [
        PageNone, PageReadonly, PageReadonly, PageReadonly,                           // private: ---, r--, -w-, rw-
        PageReadonlyExec, PageReadonlyExec, PageReadonlyExec, PageReadonlyExec,       // private: --x, r-x, -wx, rwx
        PageNone, PageReadonly, PageShared, PageShared,                               // shared
        PageReadonlyExec, PageReadonlyExec, PageSharedExec, PageSharedExec,
    ];

    internal override Architecture Kind => Architecture.Arm64;
    internal override int MaxPhysmemBits => 48;
    internal override int SectionSizeBits => 27;
    internal override ulong TaskSize => 1UL << 48;
    /// <summary>TCR_EL1.TBI0: EL0 accesses ignore bits 63:56. untagged_addr sign-extends from bit 55, so a
    /// pointer with bit 55 set stays a (kernel-half) address that the TASK_SIZE check refuses.</summary>
    internal override ulong UntaggedAddr(ulong addr) => (ulong)((long)(addr << 8) >> 8);
    internal override bool VmemmapCoversOnlyLinearMap => true;

    internal override ulong VmGetPageProt(VmFlags flags) =>
        _protectionMap[(int)((ulong)flags & (ulong)(VmFlags.Read | VmFlags.Write | VmFlags.Exec | VmFlags.Shared))];

    // --- PTE leaves ----------------------------------------------------------------------
    internal override ulong PfnPte(Pfn pfn, ulong pgprot) => ((pfn.Value << PageShift) & PteAddrMask) | pgprot;
    internal override Pfn PtePfn(ulong pte) => new((pte & PteAddrMask) >> PageShift);

    private static bool PteValidBit(ulong pte) => (pte & PteValid) != 0;
    private static bool PtePresentInvalidBits(ulong pte) => (pte & (PteValid | PtePresentInvalid)) == PtePresentInvalid;
    private static bool PteHwDirty(ulong pte) => (pte & PteWriteBit) != 0 && (pte & PteRdonly) == 0;
    private static bool PteSwDirty(ulong pte) => (pte & PteDirtyBit) != 0;

    internal override bool PtePresent(ulong pte) => PteValidBit(pte) || PtePresentInvalidBits(pte);
    /// <summary>pte_protnone: present-invalid and neither user-readable nor user-executable.</summary>
    internal override bool PteProtNone(ulong pte) => PtePresentInvalidBits(pte) && (pte & PteUser) == 0 && (pte & PteUxn) != 0;
    internal override bool PteWrite(ulong pte) => (pte & PteWriteBit) != 0;
    internal override bool PteDirty(ulong pte) => PteSwDirty(pte) || PteHwDirty(pte);
    internal override bool PteYoung(ulong pte) => (pte & PteAf) != 0;
    internal override bool PteSoftDirty(ulong pte) => false;
    internal override bool PteSpecial(ulong pte) => (pte & PteSpecialBit) != 0;

    internal override ulong PteMkwrite(ulong pte) => (pte | PteWriteBit) & ~PteRdonly;

    internal override ulong PteWrprotect(ulong pte)
    {
        if (PteHwDirty(pte))
            pte = PteMkdirty(pte);
        return (pte & ~PteWriteBit) | PteRdonly;
    }

    internal override ulong PteMkdirty(ulong pte)
    {
        pte |= PteDirtyBit;
        return PteWrite(pte) ? pte & ~PteRdonly : pte;
    }

    internal override ulong PteMkclean(ulong pte) => (pte & ~PteDirtyBit) | PteRdonly;
    internal override ulong PteMkyoung(ulong pte) => pte | PteAf;
    internal override ulong PteMkold(ulong pte) => pte & ~PteAf;
    internal override ulong PteMksoftDirty(ulong pte) => pte;
    internal override ulong PteMkspecial(ulong pte) => pte | PteSpecialBit;

    internal override ulong PteModify(ulong pte, ulong pgprot)
    {
        if (PteHwDirty(pte))
            pte |= PteDirtyBit;
        pte = (pte & ~PteModifyMask) | (pgprot & PteModifyMask);
        return PteSwDirty(pte) ? PteMkdirty(pte) : pte;
    }

    // --- PMD leaves and tables -----------------------------------------------------------
    /// <summary>pfn_pmd with pmd_mkhuge: a block descriptor has the table bit clear.</summary>
    internal override ulong PfnPmd(Pfn pfn, ulong pgprot) => ((pfn.Value << PageShift) & PteAddrMask) | (pgprot & ~PteTableBit);
    internal override Pfn PmdPfn(ulong pmd) => new((pmd & PmdAddrMask) >> PageShift);
    internal override bool PmdPresent(ulong pmd) => PtePresent(pmd);
    internal override bool PmdProtNone(ulong pmd) => PteProtNone(pmd);
    private static bool PmdTable(ulong pmd) => (pmd & PmdTypeMask) == PmdTypeTable;
    internal override bool PmdLeaf(ulong pmd) => PmdPresent(pmd) && !PmdTable(pmd);
    internal override bool PmdWrite(ulong pmd) => PteWrite(pmd);
    internal override bool PmdDirty(ulong pmd) => PteDirty(pmd);
    internal override bool PmdYoung(ulong pmd) => PteYoung(pmd);
    internal override bool PmdSoftDirty(ulong pmd) => false;
    internal override ulong PmdMkwrite(ulong pmd) => PteMkwrite(pmd);
    internal override ulong PmdWrprotect(ulong pmd) => PteWrprotect(pmd);
    internal override ulong PmdMkdirty(ulong pmd) => PteMkdirty(pmd);
    internal override ulong PmdMksoftDirty(ulong pmd) => pmd;
    internal override ulong PmdMkyoung(ulong pmd) => PteMkyoung(pmd);
    internal override ulong PmdMkold(ulong pmd) => PteMkold(pmd);
    internal override ulong PmdModify(ulong pmd, ulong pgprot) => PteModify(pmd, pgprot);

    internal override ulong MkTable(Pfn table) => ((table.Value << PageShift) & PteAddrMask) | PmdTypeTable;
    internal override bool IsTable(ulong entry) => (entry & PmdTypeMask) == PmdTypeTable;
    internal override Pfn TablePfn(ulong entry) => new((entry & PteAddrMask) >> PageShift);

    // --- swap entries ----------------------------------------------------------------------
    private static ulong ArchSwpEntry(uint type, ulong offset) => ((ulong)type << SwpTypeShift) | (offset << SwpOffsetShift);
    private static SwapEntry ArchDecode(ulong val) =>
        SwapEntry.Make((uint)((val >> SwpTypeShift) & SwpTypeMask), (val >> SwpOffsetShift) & SwpOffsetMask);

    internal override ulong SwpEntryToPte(SwapEntry entry) => ArchSwpEntry(entry.Type, entry.Offset);
    internal override SwapEntry PteToSwpEntry(ulong pte) => ArchDecode(pte & ~(PteSwpExclusiveBit | PteSwpUffdWpBit));
    internal override bool PteSwpSoftDirty(ulong pte) => false;
    internal override ulong PteSwpMksoftDirty(ulong pte) => pte;
    internal override bool PteSwpExclusive(ulong pte) => (pte & PteSwpExclusiveBit) != 0;
    internal override ulong PteSwpMkexclusive(ulong pte) => pte | PteSwpExclusiveBit;
    internal override ulong PteSwpClearExclusive(ulong pte) => pte & ~PteSwpExclusiveBit;
    internal override bool PteSwpUffdWp(ulong pte) => (pte & PteSwpUffdWpBit) != 0;
    internal override ulong PteSwpMkuffdWp(ulong pte) => pte | PteSwpUffdWpBit;

    internal override ulong SwpEntryToPmd(SwapEntry entry) => ArchSwpEntry(entry.Type, entry.Offset);
    internal override SwapEntry PmdToSwpEntry(ulong pmd) => ArchDecode(pmd & ~(PteSwpExclusiveBit | PteSwpUffdWpBit));
    internal override bool PmdSwpSoftDirty(ulong pmd) => false;
    internal override ulong PmdSwpMksoftDirty(ulong pmd) => pmd;
    internal override bool PmdSwpExclusive(ulong pmd) => (pmd & PteSwpExclusiveBit) != 0;
    internal override ulong PmdSwpMkexclusive(ulong pmd) => pmd | PteSwpExclusiveBit;
    internal override bool PmdSwpUffdWp(ulong pmd) => (pmd & PteSwpUffdWpBit) != 0;
    internal override ulong PmdSwpMkuffdWp(ulong pmd) => pmd | PteSwpUffdWpBit;
}
