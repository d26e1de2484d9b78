namespace HmmSim.Kernel;

/// <summary>mm/mprotect.c: do_mprotect_pkey, mprotect_fixup and change_protection.</summary>
internal static class Mprotect
{
    public static Errno DoMprotect(MmStruct mm, ulong start, ulong len, Prot prot)
    {
        if ((start & (Arch.PageSize - 1)) != 0)
            return Errno.EINVAL;
        if (len == 0)
            return Errno.None;
        // do_mprotect_pkey: a range that wraps is ENOMEM before the prot bits are looked at.
        ulong alignedLen = (len + Arch.PageSize - 1) & Arch.PageMask;
        ulong end = start + alignedLen;
        if (alignedLen == 0 || end <= start)
            return Errno.ENOMEM;
        // arch_validate_prot: PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM (0x8, accepted and ignored).
        if (((uint)prot & ~0xfu) != 0)
            return Errno.EINVAL;
        var vma = mm.Vmas.FindVma(start);
        if (vma is null || vma.Start > start)
            return Errno.ENOMEM;
        var protBits = Mmap.CalcVmProtBits(prot);
        ulong nstart = start;
        while (true)
        {
            var newFlags = protBits | (vma.Flags & ~VmFlags.AccessFlags);
            // The new access must be allowed by VM_MAY*: (newflags & ~(newflags >> 4)) & access.
            if (((ulong)newFlags & ~((ulong)newFlags >> 4) & (ulong)VmFlags.AccessFlags) != 0)
                return Errno.EACCES;
            if (vma.IsHugetlb && ((nstart & (Arch.PmdSize - 1)) != 0 || end < vma.End && (end & (Arch.PmdSize - 1)) != 0))
                return Errno.EINVAL;
            ulong tmp = Math.Min(vma.End, end);
            vma = MprotectFixup(mm, vma, nstart, tmp, newFlags);
            nstart = tmp;
            if (nstart >= end)
                return Errno.None;
            // mprotect_fixup may have merged the VMA with its next neighbour (which already had the
            // new flags): the kernel goes on from the merged VMA's end, so only a gap is ENOMEM.
            var next = mm.Vmas.FindVma(nstart);
            if (next is null || next.Start > nstart)
                return Errno.ENOMEM;
            vma = next;
        }
    }

    /// <summary>mprotect_fixup: split to the range, set the flags, change the PTEs, merge back.</summary>
    private static Vma MprotectFixup(MmStruct mm, Vma vma, ulong start, ulong end, VmFlags newFlags)
    {
        if (newFlags == vma.Flags)
            return vma;
        if (start > vma.Start)
            vma = Mmap.SplitVma(mm, vma, start);
        if (end < vma.End)
            Mmap.SplitVma(mm, vma, end);
        vma.SetFlags(newFlags);
        ChangeProtection(vma, start, end, VmaWantsManualPteWriteUpgrade(vma));
        return Mmap.TryMergeNeighbours(mm, vma);
    }

    /// <summary>vma_wants_manual_pte_write_upgrade: private writable, or shared writable without writenotify.</summary>
    private static bool VmaWantsManualPteWriteUpgrade(Vma vma) => (vma.Flags & VmFlags.Write) != 0;

    /// <summary>change_protection over [start, end) of one VMA.</summary>
    public static void ChangeProtection(Vma vma, ulong start, ulong end, bool tryWritable)
    {
        var mm = vma.Mm;
        var arch = mm.Arch;
        ulong newProt = vma.PageProt;
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.ProtectionVma, start, end, null);
        foreach (var (addr, next, pmdTable, pmd) in new PmdWalk(mm, start, end))
        {
            if (!arch.IsTable(pmd))
            {
                bool whole = (addr & (Arch.PmdSize - 1)) == 0 && next - addr == Arch.PmdSize;
                if (whole || vma.IsHugetlb)
                {
                    HugeMemory.ChangeHugePmd(vma, pmdTable, addr & ~(Arch.PmdSize - 1), newProt, tryWritable && !vma.IsHugetlb);
                    continue;
                }
                HugeMemory.SplitHugePmd(vma, pmdTable, addr & ~(Arch.PmdSize - 1));
            }
            if (!mm.PteTable(pmdTable, addr, alloc: false, out var pteTable))
                continue;
            lock (mm.PageTableLock)
            {
                var ptes = mm.Table(pteTable);
                for (ulong a = addr; a < next; a += Arch.PageSize)
                {
                    ref ulong slot = ref ptes[MmStruct.PteIndex(a)];
                    ulong pte = slot;
                    if (pte == 0)
                        continue;
                    if (!arch.PtePresent(pte))
                    {
                        slot = SwapFaults.ChangeNonPresentPte(vma, a, pte);
                        continue;
                    }
                    ulong e = arch.PteModify(pte, newProt);
                    if (tryWritable && !arch.PteWrite(e) && CanChangePteWritable(vma, e))
                        e = arch.PteMkwrite(e);
                    slot = e;
                }
            }
        }
    }

    /// <summary>can_change_pte_writable: a private mapping only for exclusive anon pages; a shared
    /// one only for dirty PTEs (clean ones take a write fault for dirty tracking).</summary>
    private static bool CanChangePteWritable(Vma vma, ulong pte)
    {
        var arch = vma.Mm.Arch;
        if (arch.PteProtNone(pte))
            return false;
        if (!vma.IsShared)
        {
            var page = Memory.VmNormalPage(vma, pte);
            return !page.IsNull && page.Folio.IsAnon && page.AnonExclusive;
        }
        return arch.PteDirty(pte);
    }
}
