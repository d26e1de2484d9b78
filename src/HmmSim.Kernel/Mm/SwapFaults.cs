namespace HmmSim.Kernel;

/// <summary>Non-present, non-none page-table entries (softleaf entries) in the mm's own paths:
/// mm/memory.c do_swap_page, zap, fork (copy_nonpresent_pte) and mprotect (change_softleaf_pte),
/// and their PMD forms in mm/huge_memory.c. There is no swap device: the entries met here are
/// migration, device-private and device-exclusive ones (and markers).</summary>
internal static class SwapFaults
{
    /// <summary>do_swap_page.</summary>
    public static VmFaultResult DoSwapPage(ref VmFault vmf, Pfn pteTable)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var kernel = mm.Kernel;
        var sw = kernel.Swapops;
        var entry = kernel.Arch.PteToSwpEntry(vmf.OrigPte);
        if (sw.SoftleafIsMigration(entry))
        {
            Migrate.MigrationEntryWait(kernel, entry);
            return VmFaultResult.None;
        }
        if (sw.SoftleafIsDeviceExclusive(entry))
            return DeviceExclusive.RemoveDeviceExclusiveEntry(ref vmf, pteTable);
        if (sw.SoftleafIsDevicePrivate(entry))
            return DevicePrivateFault(ref vmf, entry, pteTable, pmdLevel: false, vmf.OrigPte);
        if (sw.SoftleafIsHwpoison(entry) || sw.SoftleafIsPoisonMarker(entry))
            return VmFaultResult.HwPoison;
        if (sw.SoftleafIsGuardMarker(entry))
            return VmFaultResult.Sigsegv;
        return VmFaultResult.Sigbus;
    }

    /// <summary>The device-private branch of do_swap_page (and do_huge_pmd_device_private): lock the
    /// device page and ask its pagemap's migrate_to_ram to bring it back.</summary>
    private static VmFaultResult DevicePrivateFault(ref VmFault vmf, SwapEntry entry, Pfn table, bool pmdLevel, ulong expected)
    {
        var mm = vmf.Vma.Mm;
        Page page;
        Folio folio;
        lock (mm.PageTableLock)
        {
            ulong now = pmdLevel ? mm.PmdRef(table, vmf.Address) : mm.PteRef(table, vmf.Address);
            if (now != expected)
                return VmFaultResult.None;
            // softleaf_to_page is address arithmetic in the kernel; the model's lookup reads the memmap,
            // so it runs only once the entry is known to be still in place (a RELEASE may have removed
            // the pagemap of an entry that changed since it was read).
            page = mm.Kernel.Swapops.SoftleafToPage(entry);
            folio = page.Folio;
            if (!folio.TryLock())
                goto wait;
            folio.Get();
        }
        try
        {
            vmf.Page = page;
            var pgmap = folio.Pgmap ?? ThrowHelper.KernelBug<DevPagemap>($"device-private {page} without a pgmap");
            var migrateToRam = pgmap.Ops.MigrateToRam ?? ThrowHelper.KernelBug<Func<VmFault, VmFaultResult>>($"{pgmap} has no migrate_to_ram");
            // Not an upstream tracepoint: the CPU fault handing a device-private page to its driver.
            vmf.Vma.Mm.Kernel.Trace?.Event(vmf.Vma.Mm.Pid, "migrate_to_ram", $"address=0x{vmf.Address:x} {page.TraceField} owner={pgmap.Owner}");
            return migrateToRam(vmf);
        }
        finally
        {
            // migrate_to_ram may have split the folio: the lock and reference are on vmf->page's folio now.
            var now = vmf.Page.Folio;
            now.Unlock();
            now.Put();
        }
    wait:
        var spin = new SpinWait();
        while (folio.IsLocked)
            spin.SpinOnce(sleep1Threshold: 20);
        return VmFaultResult.None;
    }

    /// <summary>A fault on a non-present PMD: a PMD migration entry (wait) or a device-private THP.</summary>
    public static VmFaultResult DoHugePmdNonPresent(ref VmFault vmf, Pfn pmdTable)
    {
        var mm = vmf.Vma.Mm;
        var kernel = mm.Kernel;
        var sw = kernel.Swapops;
        ulong haddr = vmf.Address & ~(Arch.PmdSize - 1);
        ulong pmd = mm.PmdRef(pmdTable, haddr);
        var entry = kernel.Arch.PmdToSwpEntry(pmd);
        if (sw.SoftleafIsMigration(entry))
        {
            Migrate.MigrationEntryWait(kernel, entry);
            return VmFaultResult.None;
        }
        if (sw.SoftleafIsDevicePrivate(entry))
        {
            vmf.PmdFault = true;
            return DevicePrivateFault(ref vmf, entry, pmdTable, pmdLevel: true, pmd);
        }
        ThrowHelper.KernelBug($"non-present PMD 0x{pmd:x16} at 0x{haddr:x} is neither migration nor device-private");
        return VmFaultResult.Sigbus;
    }

    /// <summary>zap_nonpresent_ptes for one entry (called under the page-table lock; the slot is already cleared).</summary>
    public static void ZapNonPresentPte(Vma vma, ulong addr, ulong pte)
    {
        var mm = vma.Mm;
        var sw = mm.Kernel.Swapops;
        var entry = mm.Arch.PteToSwpEntry(pte);
        if (sw.SoftleafIsDevicePrivate(entry) || sw.SoftleafIsDeviceExclusive(entry))
        {
            var page = sw.SoftleafToPage(entry);
            var folio = page.Folio;
            Memory.DecRss(mm, folio);
            Rmap.FolioRemoveRmapPtes(folio, page, 1, vma);
            folio.Put();
        }
        else if (sw.SoftleafIsMigration(entry))
        {
            Memory.DecRss(mm, sw.SoftleafToFolio(entry));
        }
        else if (!sw.SoftleafIsMarker(entry))
        {
            ThrowHelper.KernelBug($"zap: unexpected entry {entry} at 0x{addr:x} in {vma}");
        }
    }

    /// <summary>zap_huge_pmd of a non-present PMD (the slot is already cleared).</summary>
    public static void ZapNonPresentPmd(Vma vma, ulong addr, ulong pmd)
    {
        var mm = vma.Mm;
        var sw = mm.Kernel.Swapops;
        var entry = mm.Arch.PmdToSwpEntry(pmd);
        var folio = sw.SoftleafToFolio(entry);
        Interlocked.Add(ref mm.AnonRss, -Arch.PtrsPerTable);
        if (sw.SoftleafIsDevicePrivate(entry))
        {
            Rmap.FolioRemoveRmapPmd(folio, vma);
            folio.Put();
        }
        else if (!sw.SoftleafIsMigration(entry))
        {
            ThrowHelper.KernelBug($"zap: unexpected PMD entry {entry} at 0x{addr:x} in {vma}");
        }
    }

    /// <summary>copy_nonpresent_pte (fork). Returns the child's entry, downgrading the parent's in
    /// place where COW demands it. A device-exclusive entry is restored in the parent first and the
    /// result is ENOENT, telling the caller to copy it as a present PTE (copy_nonpresent_pte's -ENOENT); EBUSY fails the fork.</summary>
    public static Errno CopyNonPresentPte(Vma dst, Vma src, ref ulong srcPte, ulong addr, out ulong childPte)
    {
        childPte = 0;
        var kernel = src.Mm.Kernel;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        ulong pte = srcPte;
        var entry = arch.PteToSwpEntry(pte);
        if (sw.SoftleafIsMigration(entry))
        {
            IncRss(dst.Mm, sw.SoftleafToFolio(entry));
            if (!sw.SoftleafIsMigrationRead(entry) && src.IsCowMapping)
            {
                // A writable or exclusive migration entry becomes readable (shared) in both.
                ulong off = entry.Offset;
                var ro = sw.SoftleafIsMigrationDevicePrivate(entry) ? sw.MakeReadableMigrationDevicePrivateEntry(off) : sw.MakeReadableMigrationEntry(off);
                ulong n = arch.SwpEntryToPte(ro);
                if (arch.PteSwpSoftDirty(pte))
                    n = arch.PteSwpMksoftDirty(n);
                srcPte = pte = n;
            }
            childPte = pte;
            return Errno.None;
        }
        if (sw.SoftleafIsDevicePrivate(entry))
        {
            var page = sw.SoftleafToPage(entry);
            var folio = page.Folio;
            folio.Get();
            IncRss(dst.Mm, folio);
            page.DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags &= ~(uint)PageFlags.AnonExclusive;   // folio_try_dup_anon_rmap_pte
            Rmap.FolioDupRmapPtes(folio, page, 1, kernel);
            if (sw.SoftleafIsDevicePrivateWrite(entry) && src.IsCowMapping)
                srcPte = pte = arch.SwpEntryToPte(sw.MakeReadableDevicePrivateEntry(entry.Offset));
            childPte = pte;
            return Errno.None;
        }
        if (sw.SoftleafIsDeviceExclusive(entry))
        {
            if (!src.IsCowMapping)
                ThrowHelper.KernelBug($"fork: device-exclusive entry in a non-COW mapping {src}");
            var folio = sw.SoftleafToFolio(entry);
            if (!folio.TryLock())
                return Errno.EBUSY;   // fork fails
            try
            {
                srcPte = DeviceExclusive.RestoreExclusivePte(src, sw.SoftleafToPage(entry), pte);
            }
            finally
            {
                folio.Unlock();
            }
            return Errno.ENOENT;
        }
        if (sw.SoftleafIsMarker(entry))
        {
            childPte = sw.SoftleafIsGuardMarker(entry) ? pte : 0;
            return Errno.None;
        }
        ThrowHelper.KernelBug($"fork: unexpected entry {entry} at 0x{addr:x} in {src}");
        childPte = 0;
        return Errno.None;
    }

    /// <summary>copy_huge_non_present_pmd (fork).</summary>
    public static ulong CopyNonPresentPmd(Vma dst, Vma src, ref ulong srcPmd, ulong addr)
    {
        var kernel = src.Mm.Kernel;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        ulong pmd = srcPmd;
        var entry = arch.PmdToSwpEntry(pmd);
        var folio = sw.SoftleafToFolio(entry);
        Interlocked.Add(ref dst.Mm.AnonRss, Arch.PtrsPerTable);
        // Both downgrades keep the soft-dirty bit of the parent's entry (and so the child's).
        if (sw.SoftleafIsMigration(entry))
        {
            if (sw.SoftleafIsMigrationWrite(entry) || sw.SoftleafIsMigrationReadExclusive(entry))
            {
                var ro = sw.SoftleafIsMigrationDevicePrivate(entry) ? sw.MakeReadableMigrationDevicePrivateEntry(entry.Offset) : sw.MakeReadableMigrationEntry(entry.Offset);
                srcPmd = pmd = KeepPmdSwpSoftDirty(arch, pmd, arch.SwpEntryToPmd(ro));
            }
            return pmd;
        }
        if (sw.SoftleafIsDevicePrivate(entry))
        {
            folio.Get();
            for (int i = 0; i < folio.NrPages; i++)
                folio.Page(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags &= ~(uint)PageFlags.AnonExclusive;
            Rmap.FolioDupRmapPmd(folio, kernel);
            if (sw.SoftleafIsDevicePrivateWrite(entry))
                srcPmd = pmd = KeepPmdSwpSoftDirty(arch, pmd, arch.SwpEntryToPmd(sw.MakeReadableDevicePrivateEntry(entry.Offset)));
            return pmd;
        }
        ThrowHelper.KernelBug($"fork: unexpected PMD entry {entry} at 0x{addr:x} in {src}");
        return 0;
    }

    /// <summary><paramref name="pmd"/> with the swap soft-dirty bit of <paramref name="from"/>.</summary>
    public static ulong KeepPmdSwpSoftDirty(Arch arch, ulong from, ulong pmd) =>
        arch.PmdSwpSoftDirty(from) ? arch.PmdSwpMksoftDirty(pmd) : pmd;

    /// <summary>Splitting a non-present PMD (a migration entry or a device-private THP) into 512 PTE entries.</summary>
    public static void SplitNonPresentPmd(Vma vma, ulong pmd, Span<ulong> ptes, ulong haddr)
    {
        var kernel = vma.Mm.Kernel;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        var entry = arch.PmdToSwpEntry(pmd);
        var folio = sw.SoftleafToFolio(entry);
        bool softDirty = arch.PmdSwpSoftDirty(pmd);
        if (sw.SoftleafIsMigration(entry))
        {
            bool write = sw.SoftleafIsMigrationWrite(entry), excl = sw.SoftleafIsMigrationReadExclusive(entry);
            bool young = sw.IsMigrationEntryYoung(entry), dirty = sw.IsMigrationEntryDirty(entry);
            for (int i = 0; i < Arch.PtrsPerTable; i++)
            {
                ulong p = arch.SwpEntryToPte(Migrate.MakeMigrationEntry(sw, folio.Page(i), write, excl, young, dirty));
                ptes[i] = softDirty ? arch.PteSwpMksoftDirty(p) : p;
            }
            return;
        }
        if (!sw.SoftleafIsDevicePrivate(entry))
            ThrowHelper.KernelBug($"split of PMD entry {entry} at 0x{haddr:x}: neither migration nor device-private");
        bool w = sw.SoftleafIsDevicePrivateWrite(entry);
        for (int i = 0; i < Arch.PtrsPerTable; i++)
        {
            var page = folio.Page(i);
            ulong p = arch.SwpEntryToPte(w ? sw.MakeWritableDevicePrivateEntryFromPage(page) : sw.MakeReadableDevicePrivateEntryFromPage(page));
            ptes[i] = softDirty ? arch.PteSwpMksoftDirty(p) : p;
        }
        folio.GetMany(Arch.PtrsPerTable - 1);
        Rmap.FolioAddAnonRmapPtes(folio, folio.Page(), folio.NrPages, vma, exclusive: false);
        Rmap.FolioRemoveRmapPmd(folio, vma);
    }

    /// <summary>change_non_present_huge_pmd (mprotect): writable entries become readable.</summary>
    public static ulong ChangeNonPresentPmd(Vma vma, ulong pmd)
    {
        var arch = vma.Mm.Arch;
        var sw = vma.Mm.Kernel.Swapops;
        var entry = arch.PmdToSwpEntry(pmd);
        if (sw.SoftleafIsMigrationWrite(entry))
        {
            // Device-private folios are always anonymous, so only the exclusive form is reachable for them.
            var folio = sw.SoftleafToFolio(entry);
            var e = folio.IsAnon ? sw.MakeReadableExclusiveMigrationEntryFromPage(folio.Page(), MigrationAd(sw, entry))
                : sw.MakeReadableMigrationEntryFromPage(folio.Page(), MigrationAd(sw, entry));
            ulong n = arch.SwpEntryToPmd(e);
            return arch.PmdSwpSoftDirty(pmd) ? arch.PmdSwpMksoftDirty(n) : n;
        }
        if (sw.SoftleafIsDevicePrivateWrite(entry))
            return arch.SwpEntryToPmd(sw.MakeReadableDevicePrivateEntry(entry.Offset));
        return pmd;
    }

    /// <summary>change_softleaf_pte (mprotect): a writable migration entry becomes read-exclusive (anon)
    /// or readable (file), keeping its young/dirty bits; DEVICE_PRIVATE_WRITE becomes READ whatever the
    /// new protection; everything else is left as it is.</summary>
    public static ulong ChangeNonPresentPte(Vma vma, ulong addr, ulong pte)
    {
        var arch = vma.Mm.Arch;
        var sw = vma.Mm.Kernel.Swapops;
        var entry = arch.PteToSwpEntry(pte);
        if (sw.SoftleafIsMigrationWrite(entry))
        {
            var page = sw.SoftleafToPage(entry);
            var e = page.Folio.IsAnon ? sw.MakeReadableExclusiveMigrationEntryFromPage(page, MigrationAd(sw, entry))
                : sw.MakeReadableMigrationEntryFromPage(page, MigrationAd(sw, entry));
            ulong n = arch.SwpEntryToPte(e);
            return arch.PteSwpSoftDirty(pte) ? arch.PteSwpMksoftDirty(n) : n;
        }
        if (sw.SoftleafIsDevicePrivateWrite(entry))
            return arch.SwpEntryToPte(sw.MakeReadableDevicePrivateEntry(entry.Offset));
        return pte;
    }

    /// <summary>The young/dirty bits of a migration entry's offset, to carry into its replacement.</summary>
    private static ulong MigrationAd(Swapops sw, SwapEntry entry) =>
        (sw.IsMigrationEntryYoung(entry) ? sw.SwpMigYoung : 0) | (sw.IsMigrationEntryDirty(entry) ? sw.SwpMigDirty : 0);

    private static void IncRss(MmStruct mm, Folio folio)
    {
        if (folio.IsAnon)
            Interlocked.Increment(ref mm.AnonRss);
        else
            Interlocked.Increment(ref mm.ShmemRss);
    }
}
