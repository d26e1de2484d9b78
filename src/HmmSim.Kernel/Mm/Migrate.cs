namespace HmmSim.Kernel;

/// <summary>mm/migrate.c and the migration half of mm/rmap.c: migration entries are installed in
/// place of a folio's mappings (try_to_migrate), replaced by the new folio's mappings when the copy
/// is done (remove_migration_ptes), and waited on by anyone who faults on one.</summary>
internal static class Migrate
{
    /// <summary>Replaces one present or device-private PTE that maps <paramref name="page"/> by a
    /// migration entry: WRITE if it was writable, READ_EXCLUSIVE if the page was anon-exclusive, else
    /// READ, with the young/dirty bits when the arch keeps them. The mapping's rmap and reference go.
    /// Returns false (and changes nothing) when an exclusive page may be pinned.</summary>
    public static bool InstallPteMigrationEntry(Vma vma, ref ulong slot, Page page)
    {
        var kernel = vma.Mm.Kernel;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        ulong old = slot;
        var folio = page.Folio;
        bool write, young = false, dirty = false, softDirty;
        if (arch.PtePresent(old))
        {
            write = arch.PteWrite(old);
            young = arch.PteYoung(old);
            dirty = arch.PteDirty(old);
            softDirty = arch.PteSoftDirty(old);
        }
        else
        {
            write = sw.SoftleafIsDevicePrivateWrite(arch.PteToSwpEntry(old));
            softDirty = arch.PteSwpSoftDirty(old);
        }
        bool anonExclusive = folio.IsAnon && page.AnonExclusive;
        if (anonExclusive)
        {
            // folio_try_share_anon_rmap_pte: a possibly pinned exclusive page must stay where it is.
            if (Fork.FolioMaybeDmaPinned(folio))
                return false;
            page.DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags &= ~(uint)PageFlags.AnonExclusive;
        }
        if (dirty)
            folio.SetFlag(PageFlags.Dirty);
        var entry = MakeMigrationEntry(sw, page, write, anonExclusive, young, dirty);
        ulong pte = arch.SwpEntryToPte(entry);
        if (softDirty)
            pte = arch.PteSwpMksoftDirty(pte);
        slot = pte;
        Rmap.FolioRemoveRmapPtes(folio, page, 1, vma);
        folio.Put();
        return true;
    }

    /// <summary>set_pmd_migration_entry: the PMD form, for a PMD-mapped THP or device-private PMD.</summary>
    public static bool InstallPmdMigrationEntry(Vma vma, ref ulong slot, Folio folio)
    {
        CheckPmdMigratable(folio, "try_to_migrate_one");
        var kernel = vma.Mm.Kernel;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        ulong old = slot;
        var page = folio.Page();
        bool write, young = false, dirty = false, softDirty;
        if (arch.PmdPresent(old))
        {
            write = arch.PmdWrite(old);
            young = arch.PmdYoung(old);
            dirty = arch.PmdDirty(old);
            softDirty = arch.PmdSoftDirty(old);
        }
        else
        {
            write = sw.SoftleafIsDevicePrivateWrite(arch.PmdToSwpEntry(old));
            softDirty = arch.PmdSwpSoftDirty(old);
        }
        bool anonExclusive = folio.IsAnon && page.AnonExclusive;
        if (anonExclusive)
        {
            if (Fork.FolioMaybeDmaPinned(folio))
                return false;
            for (int i = 0; i < folio.NrPages; i++)
                folio.Page(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags &= ~(uint)PageFlags.AnonExclusive;
        }
        if (dirty)
            folio.SetFlag(PageFlags.Dirty);
        var entry = MakeMigrationEntry(sw, page, write, anonExclusive, young, dirty);
        ulong pmd = arch.SwpEntryToPmd(entry);
        slot = softDirty ? arch.PmdSwpMksoftDirty(pmd) : pmd;
        Rmap.FolioRemoveRmapPmd(folio, vma);
        folio.Put();
        return true;
    }

    /// <summary>The migration entry for a page: WRITE if its mapping was writable, READ_EXCLUSIVE if the
    /// page was anon-exclusive, else READ (the redesign's device-private variants for device-private
    /// pages), with the young and dirty bits kept where the arch has room for them.</summary>
    public static SwapEntry MakeMigrationEntry(Swapops sw, Page page, bool write, bool anonExclusive, bool young, bool dirty)
    {
        var entry = write ? sw.MakeWritableMigrationEntryFromPage(page)
            : anonExclusive ? sw.MakeReadableExclusiveMigrationEntryFromPage(page)
            : sw.MakeReadableMigrationEntryFromPage(page);
        if (young)
            entry = sw.MakeMigrationEntryYoung(entry);
        if (dirty)
            entry = sw.MakeMigrationEntryDirty(entry);
        return entry;
    }

    /// <summary>try_to_migrate: every remaining mapping of a locked folio becomes a migration entry.
    /// Each candidate entry is matched as try_to_migrate_one's page_vma_mapped_walk does (numbers, and
    /// PVMW_DEVICE_PRIVATE), and the subpage is the one the entry's number names.</summary>
    public static void TryToMigrate(KernelState kernel, Folio folio, List<Rmap.Mapping>? scratch = null)
    {
        scratch ??= [];
        // rmap_walk_anon: the anon_vma lock is held until the last migration entry is in place.
        var owner = Rmap.Owner(folio);
        var rmapLock = Rmap.WalkLock(owner);
        rmapLock?.Enter();
        try
        {
            TryToMigrateLocked(kernel, folio, owner, scratch);
        }
        finally
        {
            rmapLock?.Exit();
        }
    }

    private static void TryToMigrateLocked(KernelState kernel, Folio folio, object? owner, List<Rmap.Mapping> scratch)
    {
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        var pvmw = PageVmaMapped.ForFolio(sw, folio, PvmwFlags.None);
        Rmap.WalkLocked(owner, folio, scratch);
        foreach (var m in scratch)
        {
            var vma = m.Vma;
            var mm = vma.Mm;
            MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Clear, Math.Max(vma.Start, m.Address), Math.Min(vma.End, m.Address + folio.Size), null);
            // page_vma_mapped_walk holds one page-table lock per PTE table it steps through, so the
            // pages under one PMD are matched under one lock.
            for (int i = 0; i < folio.NrPages; i += PagesToPmdEnd(m.Address, i))
            {
                ulong addr = m.Address + ((ulong)i << Arch.PageShift);
                int span = Math.Min(PagesToPmdEnd(m.Address, i), folio.NrPages - i);
                if (!SpanPmdTable(vma, addr, span, out var pmdTable))
                    continue;
                lock (mm.PageTableLock)
                {
                    ref ulong pmd = ref mm.PmdRef(pmdTable, addr);
                    if (pmd == 0)
                        continue;
                    if (!arch.IsTable(pmd))
                    {
                        if (i == 0 && addr >= vma.Start && PageVmaMapped.CheckLeafPmd(kernel, pvmw, pmd))
                            InstallPmdMigrationEntry(vma, ref pmd, folio);
                        continue;
                    }
                    var table = mm.Table(arch.TablePfn(pmd));
                    for (int k = 0; k < span; k++)
                    {
                        ulong a = addr + ((ulong)k << Arch.PageShift);
                        if (a < vma.Start || a >= vma.End)
                            continue;
                        ref ulong pte = ref table[MmStruct.PteIndex(a)];
                        // The model restores device-exclusive entries before migrating (fidelity.md), so
                        // try_to_migrate_one is not handed one here.
                        if (pte != 0 && !IsDeviceExclusive(arch, sw, pte)
                            && PageVmaMapped.CheckPte(kernel, pvmw, pte, 1, out ulong number))
                            InstallPteMigrationEntry(vma, ref pte, folio.Page((int)(number - pvmw.Pfn)));
                    }
                }
            }
        }
    }

    /// <summary>The PMD table over the <paramref name="span"/> pages at <paramref name="addr"/> (all under one
    /// PMD), if any of them lies inside the VMA and the table exists: where an rmap walk steps next.</summary>
    private static bool SpanPmdTable(Vma vma, ulong addr, int span, out Pfn pmdTable)
    {
        pmdTable = default;
        return addr + ((ulong)span << Arch.PageShift) > vma.Start && addr < vma.End
            && vma.Mm.PmdTable(Math.Max(addr, vma.Start), alloc: false, out pmdTable);
    }

    /// <summary>How many pages from page <paramref name="i"/> of a mapping at <paramref name="address"/>
    /// to the end of the PMD that page is under.</summary>
    private static int PagesToPmdEnd(ulong address, int i) =>
        Arch.PtrsPerTable - MmStruct.PteIndex(address + ((ulong)i << Arch.PageShift));

    private static bool IsDeviceExclusive(Arch arch, Swapops sw, ulong pte) =>
        !arch.PtePresent(pte) && sw.SoftleafIsDeviceExclusive(arch.PteToSwpEntry(pte));

    /// <summary>remove_migration_ptes(src, dst): every migration entry that refers to a page of
    /// <paramref name="src"/> becomes a mapping of the same page of <paramref name="dst"/> (or, for a
    /// device-private dst, a device-private entry of the same writability).</summary>
    public static void RemoveMigrationPtes(KernelState kernel, Folio src, Folio dst, List<Rmap.Mapping>? scratch = null)
    {
        scratch ??= [];
        var owner = Rmap.Owner(dst);
        var rmapLock = Rmap.WalkLock(owner);
        rmapLock?.Enter();
        try
        {
            RemoveMigrationPtesLocked(kernel, src, dst, owner, scratch);
        }
        finally
        {
            rmapLock?.Exit();
        }
    }

    private static void RemoveMigrationPtesLocked(KernelState kernel, Folio src, Folio dst, object? owner, List<Rmap.Mapping> scratch)
    {
        var arch = kernel.Arch;
        // remove_migration_pte's DEFINE_FOLIO_VMA_WALK(pvmw, src, vma, addr, PVMW_SYNC | PVMW_MIGRATION).
        var pvmw = PageVmaMapped.ForFolio(kernel.Swapops, src, PvmwFlags.Sync | PvmwFlags.Migration);
        Rmap.WalkLocked(owner, dst, scratch);
        foreach (var m in scratch)
        {
            var vma = m.Vma;
            var mm = vma.Mm;
            for (int i = 0; i < dst.NrPages; i += PagesToPmdEnd(m.Address, i))
            {
                ulong addr = m.Address + ((ulong)i << Arch.PageShift);
                int span = Math.Min(PagesToPmdEnd(m.Address, i), dst.NrPages - i);
                if (!SpanPmdTable(vma, addr, span, out var pmdTable))
                    continue;
                lock (mm.PageTableLock)
                {
                    ref ulong pmd = ref mm.PmdRef(pmdTable, addr);
                    if (pmd == 0)
                        continue;
                    if (!arch.IsTable(pmd))
                    {
                        if (i == 0 && addr >= vma.Start && !arch.PmdPresent(pmd) && PageVmaMapped.CheckLeafPmd(kernel, pvmw, pmd))
                            RemoveMigrationPmd(vma, ref pmd, dst);
                        continue;
                    }
                    var table = mm.Table(arch.TablePfn(pmd));
                    for (int k = 0; k < span; k++)
                    {
                        ulong a = addr + ((ulong)k << Arch.PageShift);
                        if (a < vma.Start || a >= vma.End)
                            continue;
                        ref ulong pte = ref table[MmStruct.PteIndex(a)];
                        if (pte != 0 && PageVmaMapped.CheckPte(kernel, pvmw, pte, 1, out ulong number))
                            RemoveMigrationPte(vma, ref pte, dst.Page((int)(number - pvmw.Pfn)));
                    }
                }
            }
        }
    }

    /// <summary>remove_migration_ptes(src[k], dst[k]) for a run of small anon or file folios that one
    /// rmap owner holds at consecutive indices from <paramref name="pgIndex"/>, as migrate_vma_finalize
    /// calls it folio by folio. The run is walked once: one rmap walk for the run's index range and one
    /// page-table lock per PTE table, where the kernel takes both per folio (docs/fidelity.md). Every
    /// entry is still matched to its own source page, so what the page tables end up holding is the
    /// per-folio result.</summary>
    public static void RemoveMigrationPtesRun(KernelState kernel, object owner, ulong pgIndex, ReadOnlySpan<ulong> src, ReadOnlySpan<ulong> dst, List<Rmap.Mapping> scratch)
    {
        var rmapLock = Rmap.WalkLock(owner);
        rmapLock?.Enter();
        try
        {
            Rmap.WalkRangeLocked(owner, pgIndex, (ulong)src.Length << Arch.PageShift, scratch);
            foreach (var m in scratch)
                RemoveMigrationPtesRunInVma(kernel, m, src, dst);
        }
        finally
        {
            rmapLock?.Exit();
        }
    }

    private static void RemoveMigrationPtesRunInVma(KernelState kernel, Rmap.Mapping m, ReadOnlySpan<ulong> src, ReadOnlySpan<ulong> dst)
    {
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        var vma = m.Vma;
        var mm = vma.Mm;
        for (int i = 0; i < src.Length; i += PagesToPmdEnd(m.Address, i))
        {
            ulong addr = m.Address + ((ulong)i << Arch.PageShift);
            int span = Math.Min(PagesToPmdEnd(m.Address, i), src.Length - i);
            if (!SpanPmdTable(vma, addr, span, out var pmdTable))
                continue;
            lock (mm.PageTableLock)
            {
                // A PMD leaf maps a PMD-sized folio, never one of these small ones.
                ulong pmd = mm.PmdRef(pmdTable, addr);
                if (pmd == 0 || !arch.IsTable(pmd))
                    continue;
                var table = mm.Table(arch.TablePfn(pmd));
                for (int k = 0; k < span; k++)
                {
                    ulong a = addr + ((ulong)k << Arch.PageShift);
                    if (a < vma.Start || a >= vma.End)
                        continue;
                    ref ulong pte = ref table[MmStruct.PteIndex(a)];
                    if (pte == 0 || arch.PtePresent(pte))
                        continue;
                    var sfolio = MigratePfn.ToPage(kernel, src[i + k]).Folio;
                    var pvmw = PageVmaMapped.ForFolio(sw, sfolio, PvmwFlags.Sync | PvmwFlags.Migration);
                    if (PageVmaMapped.CheckPte(kernel, pvmw, pte, 1, out _))
                        RemoveMigrationPte(vma, ref pte, MigratePfn.ToPage(kernel, dst[i + k]));
                }
            }
        }
    }

    /// <summary>remove_migration_pte for one PTE.</summary>
    private static void RemoveMigrationPte(Vma vma, ref ulong slot, Page newPage)
    {
        var kernel = vma.Mm.Kernel;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        ulong old = slot;
        var entry = arch.PteToSwpEntry(old);
        var folio = newPage.Folio;
        bool write = sw.SoftleafIsMigrationWrite(entry);
        bool exclusive = folio.IsAnon && !sw.SoftleafIsMigrationRead(entry);
        folio.Get();
        if (folio.IsAnon)
            Rmap.FolioAddAnonRmapPtes(folio, newPage, 1, vma, exclusive);
        else
            Rmap.FolioAddFileRmapPtes(folio, newPage, 1, vma);
        if (newPage.IsDevicePrivate)
        {
            var dev = write ? sw.MakeWritableDevicePrivateEntryFromPage(newPage) : sw.MakeReadableDevicePrivateEntryFromPage(newPage);
            ulong e = arch.SwpEntryToPte(dev);
            if (arch.PteSwpSoftDirty(old))
                e = arch.PteSwpMksoftDirty(e);
            slot = e;
            return;
        }
        // Young only if the entry kept the accessed bit; dirty only if both folio and entry are.
        ulong pte = arch.PfnPte(newPage.ToPfn(), vma.PageProt);
        pte = sw.IsMigrationEntryYoung(entry) ? arch.PteMkyoung(pte) : arch.PteMkold(pte);
        if (folio.Test(PageFlags.Dirty) && sw.IsMigrationEntryDirty(entry))
            pte = arch.PteMkdirty(pte);
        if (arch.PteSwpSoftDirty(old))
            pte = arch.PteMksoftDirty(pte);
        slot = write ? arch.PteMkwrite(pte) : arch.PteWrprotect(pte);
    }

    /// <summary>The VM_BUG_ON_FOLIO of try_to_migrate_one and remove_migration_pte at a PMD migration
    /// entry: only a PMD-sized THP (never hugetlb) is migrated at PMD level.</summary>
    private static void CheckPmdMigratable(Folio folio, string caller)
    {
        if (folio.IsHugetlb || folio.Order < Arch.PmdShift - Arch.PageShift)
            ThrowHelper.KernelBug($"VM_BUG_ON_FOLIO(folio_test_hugetlb || !folio_test_pmd_mappable): {caller}: {folio}");
    }

    /// <summary>remove_migration_pmd.</summary>
    private static void RemoveMigrationPmd(Vma vma, ref ulong slot, Folio folio)
    {
        CheckPmdMigratable(folio, "remove_migration_pte");
        var kernel = vma.Mm.Kernel;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        ulong old = slot;
        var entry = arch.PmdToSwpEntry(old);
        bool write = sw.SoftleafIsMigrationWrite(entry);
        bool exclusive = folio.IsAnon && !sw.SoftleafIsMigrationRead(entry);
        bool softDirty = arch.PmdSwpSoftDirty(old);
        folio.Get();
        Rmap.FolioAddAnonRmapPmd(folio, vma, exclusive);
        if (folio.IsDevicePrivate)
        {
            var dev = write ? sw.MakeWritableDevicePrivateEntryFromPage(folio.Page()) : sw.MakeReadableDevicePrivateEntryFromPage(folio.Page());
            ulong e = arch.SwpEntryToPmd(dev);
            slot = softDirty ? arch.PmdSwpMksoftDirty(e) : e;
            return;
        }
        ulong pmd = arch.PfnPmd(folio.Page().ToPfn(), vma.PageProt);
        if (softDirty)
            pmd = arch.PmdMksoftDirty(pmd);
        pmd = sw.IsMigrationEntryYoung(entry) ? arch.PmdMkyoung(pmd) : arch.PmdMkold(pmd);
        if (folio.Test(PageFlags.Dirty) && sw.IsMigrationEntryDirty(entry))
            pmd = arch.PmdMkdirty(pmd);
        slot = write ? arch.PmdMkwrite(pmd) : arch.PmdWrprotect(pmd);
    }

    /// <summary>migration_entry_wait: sleep until the folio the entry names is unlocked. The caller
    /// holds no page-table lock; the fault is retried afterwards.</summary>
    public static void MigrationEntryWait(KernelState kernel, SwapEntry entry)
    {
        // The kernel looks the folio up under the PTE lock with the entry still in place, so it is
        // locked; the model reads it unlocked and may see it after migration ended: no locked check,
        // and a page whose pagemap is gone by now (a RELEASE evicted and removed it) means the
        // migration is over: the caller retries and finds the new entry.
        if (!kernel.Swapops.TryPfnSwapEntryToPage(entry, out var page))
            return;
        var folio = page.Folio;
        var spin = new SpinWait();
        while (folio.IsLocked)
            spin.SpinOnce(sleep1Threshold: 20);
    }
}
