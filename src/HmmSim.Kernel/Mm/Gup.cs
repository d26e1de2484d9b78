namespace HmmSim.Kernel;

/// <summary>FOLL_* (include/linux/mm_types.h; FOLL_PIN and FOLL_TOUCH are mm-internal there).</summary>
[Flags]
internal enum FollFlags : uint
{
    None = 0,
    Write = 1 << 0, Get = 1 << 1, Dump = 1 << 2, Force = 1 << 3, NoWait = 1 << 4, NoFault = 1 << 5,
    HwPoison = 1 << 6, Anon = 1 << 7, Longterm = 1 << 8, SplitPmd = 1 << 9, PciP2pDma = 1 << 10,
    Interruptible = 1 << 11, HonorNumaFault = 1 << 12,
    Touch = 1 << 16, Tried = 1 << 17, Remote = 1 << 18, Pin = 1 << 19, FastOnly = 1 << 20,
}

/// <summary>mm/gup.c: get_user_pages / pin_user_pages and mm_populate.</summary>
internal static partial class Gup
{
    /// <summary>GUP_PIN_COUNTING_BIAS: a pin adds this to an order-0 folio's refcount.</summary>
    public const int PinCountingBias = 1024;

    /// <summary>__get_user_pages: looks up (faulting in as needed) <paramref name="pages"/>.Length pages
    /// from <paramref name="start"/>, taking a reference (FOLL_GET) or a pin (FOLL_PIN) on each.
    /// Returns the number of pages, or a negative errno if the first page failed. Caller holds mmap_lock.</summary>
    public static long GetUserPages(MmStruct mm, ulong start, Span<Page> pages, FollFlags flags)
    {
        // __gup_longterm_locked: a long-term pin that found device-coherent pages migrates them and looks again.
        for (int attempt = 0; ; attempt++)
        {
            long n = GetUserPagesInternal(mm, start, pages, flags);
            if (n <= 0 || (flags & FollFlags.Longterm) == 0 || !CheckAndMigrateMovablePages(mm, pages[..(int)n], flags))
                return n;
            if (attempt > 64)
                ThrowHelper.KernelBug($"FOLL_LONGTERM GUP at 0x{start:x} kept finding device-coherent pages after migrating them");
        }
    }

    /// <summary>__get_user_pages: follow_page_mask per page (GUP keeps its own walk, as gup.c does), faulting where it says so.</summary>
    private static long GetUserPagesInternal(MmStruct mm, ulong start, Span<Page> pages, FollFlags flags)
    {
        if ((flags & (FollFlags.Get | FollFlags.Pin)) == (FollFlags.Get | FollFlags.Pin))
            ThrowHelper.Argument(nameof(flags), "FOLL_GET and FOLL_PIN are exclusive");
        // __get_user_pages: pages to fill but neither a reference nor a pin to take on them.
        VmWarn.On(mm.Kernel, !pages.IsEmpty && (flags & (FollFlags.Get | FollFlags.Pin)) == 0, "__get_user_pages: pages wanted without FOLL_GET or FOLL_PIN");
        int i = 0;
        for (; i < pages.Length; i++)
        {
            ulong addr = start + ((ulong)i << Arch.PageShift);
            var vma = mm.Vmas.Lookup(addr);
            var err = vma is null ? Errno.EFAULT : CheckVmaFlags(vma, flags);
            if (err != Errno.None)
                return i > 0 ? i : -(long)err;
            Page page;
            int tries = 0;
            Errno grabbed;
            while ((grabbed = FollowPageMask(vma!, addr, flags, out page)) == Errno.EAGAIN)
            {
                var fflags = FaultFlags.Remote;
                if ((flags & FollFlags.Write) != 0)
                    fflags |= FaultFlags.Write;
                else if (GupMustUnshare(vma!, addr, flags))
                    fflags |= FaultFlags.Unshare;
                var ret = Memory.HandleMmFault(vma!, addr, fflags);
                if ((ret & VmFaultResult.Error) != 0 || ++tries > 16)
                {
                    var e = (ret & VmFaultResult.Oom) != 0 ? Errno.ENOMEM : Errno.EFAULT;
                    return i > 0 ? i : -(long)e;
                }
            }
            if (grabbed != Errno.None)
                return i > 0 ? i : -(long)grabbed;
            pages[i] = page;
        }
        return i;
    }

    /// <summary>check_vma_flags.</summary>
    private static Errno CheckVmaFlags(Vma vma, FollFlags flags)
    {
        if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
            return Errno.EFAULT;
        if ((flags & FollFlags.Write) != 0)
        {
            if ((vma.Flags & VmFlags.Write) == 0 && ((flags & FollFlags.Force) == 0 || !vma.IsCowMapping))
                return Errno.EFAULT;
        }
        else if ((vma.Flags & VmFlags.Read) == 0 && (flags & FollFlags.Force) == 0)
        {
            return Errno.EFAULT;
        }
        return Errno.None;
    }

    /// <summary>gup_must_unshare: a pin of a shared anonymous page must first make it exclusive.</summary>
    private static bool GupMustUnshare(Vma vma, ulong addr, FollFlags flags) => (flags & FollFlags.Pin) != 0;

    /// <summary>follow_page_mask: the page if mapped with enough permission (and, for a pin of anon memory,
    /// exclusive); takes the reference or pin. EAGAIN means a fault is needed; ENOMEM is try_grab_folio
    /// failing on a folio with no reference left.</summary>
    private static Errno FollowPageMask(Vma vma, ulong addr, FollFlags flags, out Page page)
    {
        page = default;
        var mm = vma.Mm;
        var arch = mm.Arch;
        bool write = (flags & FollFlags.Write) != 0;
        if (!mm.PmdTable(addr, alloc: false, out var pmdTable))
            return Errno.EAGAIN;
        lock (mm.PageTableLock)
        {
            ulong pmd = mm.PmdRef(pmdTable, addr);
            if (pmd == 0)
                return Errno.EAGAIN;
            if (!arch.IsTable(pmd))
            {
                if (!arch.PmdPresent(pmd) || write && !arch.PmdWrite(pmd))
                    return Errno.EAGAIN;
                page = mm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).Nth(MmStruct.PteIndex(addr));
            }
            else
            {
                ulong pte = mm.Table(arch.TablePfn(pmd))[MmStruct.PteIndex(addr)];
                if (pte == 0 || !arch.PtePresent(pte) || arch.PteProtNone(pte) || write && !arch.PteWrite(pte))
                    return Errno.EAGAIN;
                page = arch.PteSpecial(pte) ? mm.Kernel.Memmap.PfnToPage(arch.PtePfn(pte)) : Memory.VmNormalPage(vma, pte);
            }
            var folio = page.Folio;
            if ((flags & FollFlags.Pin) != 0 && folio.IsAnon && !page.AnonExclusive)
                return Errno.EAGAIN;   // FAULT_FLAG_UNSHARE first
            if (folio.IsZero)
                return Errno.None;     // the zero page is never refcounted or pinned
            return TryGrabFolio(folio, flags);
        }
    }

    /// <summary>try_grab_folio: FOLL_GET takes a reference; FOLL_PIN adds GUP_PIN_COUNTING_BIAS to a small
    /// folio's refcount, or one reference and one _pincount to a large folio. The caller holds a stable
    /// reference (the mapping's), so a folio with none left is a warning and ENOMEM.</summary>
    public static Errno TryGrabFolio(Folio folio, FollFlags flags)
    {
        if ((flags & (FollFlags.Get | FollFlags.Pin)) != 0 && folio.RefCount <= 0)
        {
            VmWarn.Warn(folio.Memmap.Kernel, $"try_grab_folio: {folio} has refcount {folio.RefCount}");
            return Errno.ENOMEM;
        }
        if ((flags & FollFlags.Pin) != 0)
        {
            if (folio.IsLarge)
            {
                folio.Get();
                Interlocked.Increment(ref folio.TailFor(2, PageField.PinCount, true).RefCount);
            }
            else
            {
                folio.GetMany(PinCountingBias);
            }
        }
        else if ((flags & FollFlags.Get) != 0)
        {
            folio.Get();
        }
        return Errno.None;
    }

    /// <summary>unpin_user_page.</summary>
    public static void UnpinUserPage(Page page)
    {
        SanityCheckPinnedPages(page.Memmap.Kernel, new ReadOnlySpan<Page>(in page));
        var folio = page.Folio;
        if (folio.IsZero)
            return;
        if (folio.IsLarge)
        {
            if (Interlocked.Decrement(ref folio.TailFor(2, PageField.PinCount, true).RefCount) < 0)
                ThrowHelper.KernelBug($"unpin_user_page: pincount of {folio} went negative");
            folio.Put();
        }
        else
        {
            if (folio.RefCount < PinCountingBias)
                ThrowHelper.KernelBug($"unpin_user_page: {folio} is not pinned (refcount {folio.RefCount})");
            folio.PutMany(PinCountingBias);
        }
    }

    /// <summary>put_page for a FOLL_GET reference.</summary>
    public static void PutPage(Page page)
    {
        if (!page.Folio.IsZero)
            page.Folio.Put();
    }

    /// <summary>check_and_migrate_movable_pages: a long-term pin may not hold device-coherent memory
    /// (the device may want it back), so such folios are released, migrated to RAM with
    /// migrate_device_coherent_folio, and the caller looks the pages up again. Returns whether it did.</summary>
    private static bool CheckAndMigrateMovablePages(MmStruct mm, Span<Page> pages, FollFlags flags)
    {
        var coherent = new List<Folio>();
        foreach (var p in pages)
            if (p.IsDeviceCoherent && !coherent.Contains(p.Folio))
                coherent.Add(p.Folio);
        if (coherent.Count == 0)
            return false;
        foreach (var f in coherent)
            f.Get();
        foreach (var p in pages)
        {
            if ((flags & FollFlags.Pin) != 0)
                UnpinUserPage(p);
            else if ((flags & FollFlags.Get) != 0)
                PutPage(p);
        }
        foreach (var f in coherent)
        {
            f.Lock();
            MigrateDeviceCoherentFolio(mm.Kernel, f);   // unlocks and drops our reference
        }
        return true;
    }

    /// <summary>migrate_device_coherent_folio: move one locked, referenced coherent folio to a fresh RAM page.</summary>
    private static void MigrateDeviceCoherentFolio(KernelState kernel, Folio folio)
    {
        var src = new[] { MigratePfn.FromPage(folio.Page()) | MigratePfn.Migrate };
        var dst = new ulong[1];
        MigrateDevice.MigrateDeviceUnmap(kernel, src, 1, default);
        if ((src[0] & MigratePfn.Migrate) == 0)
            return;   // -EBUSY: pinned elsewhere; the unmap pass already unlocked and released it
        if (Memory.AllocUserFolio(kernel, 0) is { } dfolio)
        {
            dfolio.Lock();
            dst[0] = MigratePfn.FromPage(dfolio.Page());
        }
        MigrateDevice.MigrateDevicePages(kernel, src, dst, 1);
        if ((src[0] & MigratePfn.Migrate) != 0)
            MigratePfn.ToPage(kernel, dst[0]).CopyDataFrom(folio.Page());
        MigrateDevice.MigrateDeviceFinalize(kernel, src, dst, 1);
    }

    /// <summary>populate_vma_page_range over [start, start+len): fault everything in; a private writable
    /// mapping is written (COW broken), anything else read.</summary>
    public static void MmPopulate(MmStruct mm, ulong start, ulong len)
    {
        ulong end = start + len;
        foreach (var vma in mm.Vmas.Range(start, end))
        {
            if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0 || (vma.Flags & VmFlags.AccessFlags) == 0)
                continue;
            bool write = (vma.Flags & (VmFlags.Write | VmFlags.Shared)) == VmFlags.Write;
            ulong s = Math.Max(start, vma.Start), e = Math.Min(end, vma.End);
            for (ulong a = s; a < e; a += Arch.PageSize)
            {
                if (FollowPageMask(vma, a, write ? FollFlags.Write : FollFlags.None, out _) == Errno.None)
                    continue;
                var ret = Memory.HandleMmFault(vma, a, write ? FaultFlags.Write : FaultFlags.None);
                if ((ret & VmFaultResult.Error) != 0)
                    break;
            }
        }
    }
}
