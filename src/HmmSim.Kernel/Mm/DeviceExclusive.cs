namespace HmmSim.Kernel;

/// <summary>Device-exclusive entries (mm/rmap.c make_device_exclusive, mm/memory.c
/// remove_device_exclusive_entry): a device takes a page for atomic access by replacing its PTE
/// with a SWP_DEVICE_EXCLUSIVE entry; the CPU's next touch restores the PTE. The entry keeps the
/// mapping's reference and mapcount.</summary>
internal static class DeviceExclusive
{
    /// <summary>make_device_exclusive: returns the page (folio locked and referenced; the caller unlocks
    /// and puts it) or an errno. Caller holds mmap_lock for read.</summary>
    public static Errno MakeDeviceExclusive(MmStruct mm, ulong addr, object? owner, out Page page)
    {
        var kernel = mm.Kernel;
        var arch = kernel.Arch;
        page = default;
        var one = new Page[1];
        for (int attempt = 0; attempt < 64; attempt++)
        {
            if (mm.Vmas.Lookup(addr) is { } v && !v.IsHugetlb)
                Mmap.SplitHugePmdAt(mm, v, addr);   // FOLL_SPLIT_PMD
            long n = Gup.GetUserPages(mm, addr, one, FollFlags.Get | FollFlags.Write);
            if (n < 0)
                return (Errno)(-n);
            var p = one[0];
            var folio = p.Folio;
            var vma = mm.Vmas.Lookup(addr)!;
            if (!folio.IsAnon || folio.IsHugetlb || vma.IsHugetlb)
            {
                Gup.PutPage(p);
                return Errno.EOPNOTSUPP;
            }
            folio.Lock();
            MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Exclusive, addr, addr + Arch.PageSize, owner);
            bool done = false;
            if (mm.WalkToPte(addr, out var pteTable))
            {
                lock (mm.PageTableLock)
                {
                    ref ulong slot = ref mm.PteRef(pteTable, addr);
                    ulong pte = slot;
                    if (arch.PtePresent(pte) && arch.PteWrite(pte) && !arch.PteSpecial(pte) && kernel.Memmap.PfnToPage(arch.PtePfn(pte)) == p)
                    {
                        if (arch.PteDirty(pte))
                            folio.SetFlag(PageFlags.Dirty);
                        ulong e = arch.SwpEntryToPte(kernel.Swapops.MakeDeviceExclusiveEntryFromPage(p));
                        slot = arch.PteSoftDirty(pte) ? arch.PteSwpMksoftDirty(e) : e;
                        done = true;
                    }
                }
            }
            if (done)
            {
                kernel.VmStat.Inc(VmStatItem.DeviceExclusive);
                page = p;
                return Errno.None;
            }
            folio.Unlock();
            Gup.PutPage(p);
        }
        ThrowHelper.KernelBug($"make_device_exclusive at 0x{addr:x} kept racing and never found its page mapped writable");
        return Errno.EBUSY;
    }

    /// <summary>remove_device_exclusive_entry: the CPU touched the page; give it its PTE back.</summary>
    public static VmFaultResult RemoveDeviceExclusiveEntry(ref VmFault vmf, Pfn pteTable)
    {
        var mm = vmf.Vma.Mm;
        var sw = mm.Kernel.Swapops;
        var page = sw.SoftleafToPage(mm.Arch.PteToSwpEntry(vmf.OrigPte));
        var folio = page.Folio;
        if (!folio.TryGet())
            return VmFaultResult.None;
        folio.Lock();
        try
        {
            MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Clear, vmf.Address, vmf.Address + Arch.PageSize, null);
            lock (mm.PageTableLock)
            {
                ref ulong slot = ref mm.PteRef(pteTable, vmf.Address);
                if (slot == vmf.OrigPte)
                    slot = RestoreExclusivePte(vmf.Vma, page, vmf.OrigPte);
            }
        }
        finally
        {
            folio.Unlock();
            folio.Put();
        }
        return VmFaultResult.None;
    }

    /// <summary>restore_exclusive_pte: a normal, old PTE; writable again only where a write fault
    /// could have made it so (an anon-exclusive page in a VM_WRITE mapping), dirty if the folio is.</summary>
    public static ulong RestoreExclusivePte(Vma vma, Page page, ulong orig)
    {
        var arch = vma.Mm.Arch;
        ulong pte = arch.PteMkold(arch.PfnPte(page.ToPfn(), vma.PageProt));
        if (arch.PteSwpSoftDirty(orig))
            pte = arch.PteMksoftDirty(pte);
        if ((vma.Flags & VmFlags.Write) != 0 && (vma.IsShared || page.Folio.IsAnon && page.AnonExclusive))
        {
            if (page.Folio.Test(PageFlags.Dirty))
                pte = arch.PteMkdirty(pte);
            pte = arch.PteMkwrite(pte);
        }
        else
        {
            pte = arch.PteWrprotect(pte);
        }
        return pte;
    }
}
