namespace HmmSim;

/// <summary>Non-present, non-none page-table entries: mm/memory.c do_swap_page, zap and fork of
/// softleaf entries, and their PMD forms. The mm core creates none (there is no swap device);
/// migration, device-private and device-exclusive entries arrive with the HMM layer. Until then
/// meeting one means the page tables were corrupted, and that is reported as the BUG it is.</summary>
internal static class SwapFaults
{
    public static VmFaultResult DoSwapPage(VmFault vmf, Pfn pteTable) =>
        Unexpected(vmf.Vma, vmf.Address, vmf.OrigPte, "do_swap_page");

    public static VmFaultResult DoHugePmdNonPresent(VmFault vmf, Pfn pmdTable) =>
        Unexpected(vmf.Vma, vmf.Address, vmf.Vma.Mm.PmdRef(pmdTable, vmf.Address), "do_huge_pmd non-present");

    public static void ZapNonPresentPte(Vma vma, ulong addr, ulong pte) => Unexpected(vma, addr, pte, "zap_pte_range");
    public static void ZapNonPresentPmd(Vma vma, ulong addr, ulong pmd) => Unexpected(vma, addr, pmd, "zap_huge_pmd");

    public static ulong CopyNonPresentPte(Vma dst, Vma src, ref ulong srcPte, ulong addr)
    {
        Unexpected(src, addr, srcPte, "copy_nonpresent_pte");
        return 0;
    }

    public static ulong CopyNonPresentPmd(Vma dst, Vma src, ref ulong srcPmd, ulong addr)
    {
        Unexpected(src, addr, srcPmd, "copy_huge_non_present_pmd");
        return 0;
    }

    public static void SplitNonPresentPmd(Vma vma, ulong pmd, Span<ulong> ptes, ulong haddr) => Unexpected(vma, haddr, pmd, "split of a non-present PMD");
    public static ulong ChangeNonPresentPmd(Vma vma, ulong pmd) => Unexpected(vma, 0, pmd, "change_non_present_huge_pmd") == 0 ? 0 : pmd;
    public static ulong ChangeNonPresentPte(Vma vma, ulong addr, ulong pte) => Unexpected(vma, addr, pte, "change_softleaf_pte") == 0 ? 0 : pte;

    private static VmFaultResult Unexpected(Vma vma, ulong addr, ulong entry, string where)
    {
        ThrowHelper.KernelBug($"{where}: unexpected non-present entry 0x{entry:x16} at 0x{addr:x} in {vma}; nothing in this model creates one here");
        return VmFaultResult.Sigbus;
    }
}
