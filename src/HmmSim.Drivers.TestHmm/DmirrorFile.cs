using System.Buffers;

namespace HmmSim.Drivers.TestHmm;

/// <summary>An open /dev/hmm_dmirrorN (struct dmirror of lib/test_hmm.c): a device that mirrors the
/// opening process's address space in its own page table (an xarray of pages tagged read-only,
/// WRITE or ATOMIC), kept coherent by an MMU interval notifier. Each method is one ioctl with
/// cmd.addr = addr and cmd.npages = npages; Dispose is close().</summary>
internal sealed class DmirrorFile : IDisposable
{
    private const byte TagAtomic = 1;
    private const byte TagWrite = 3;
    private const int FaultWindow = 32;           // dmirror_fault's range size, in pages
    private const int RangeFaultRetries = 10_000; // stands in for HMM_RANGE_DEFAULT_TIMEOUT (no wall clock in the model)

    private readonly Lock _mutex = new();
    private readonly DmirrorPt _pt;
    private readonly MmuIntervalNotifier _notifier;
    private bool _closed;

    /// <summary>dmirror_fops_open: a mirror of the opening process's address space (current->mm).</summary>
    internal DmirrorFile(DmirrorDevice device, MmStruct mm)
    {
        Device = device;
        Mm = mm;
        _pt = new DmirrorPt(device.Kernel);
        _notifier = MmuNotifier.MmuIntervalNotifierInsert(mm, 0, ulong.MaxValue & Arch.PageMask, Invalidate);
    }

    internal DmirrorDevice Device { get; }
    internal DmirrorFlags Flags { get; set; }
    private KernelState Kernel => Device.Kernel;
    private MmStruct Mm { get; }
    public int Unit => Device.Unit;

    /// <summary>dmirror_interval_invalidate: drop the mirror's entries for the range, except for
    /// this device's own migrations (the migration maps them itself).</summary>
    private bool Invalidate(MmuIntervalNotifier mni, MmuNotifierRange range, long seq)
    {
        if (range.Event == MmuNotifyEvent.Migrate && ReferenceEquals(range.Owner, Device))
            return true;
        lock (_mutex)
        {
            MmuNotifier.MmuIntervalSetSeq(mni, seq);
            EraseRangeLocked(range.Start >> Arch.PageShift, range.End >> Arch.PageShift);
        }
        return true;
    }

    /// <summary>xa_for_each_range over [first, last], inclusive as the kernel's is, erasing each entry.</summary>
    private void EraseRangeLocked(ulong first, ulong last) => _pt.EraseRange(first, last);

    /// <summary>xa_erase of <paramref name="count"/> consecutive entries under one lock (a folio's worth).</summary>
    internal void EraseRange(ulong vpfn, int count)
    {
        if (count <= 0)
            return;
        lock (_mutex)
            _pt.EraseRange(vpfn, vpfn + (ulong)count - 1);
    }

    // --- the ioctls ---------------------------------------------------------------------------

    /// <summary>dmirror_fops_unlocked_ioctl: the common prologue, then the command. <paramref name="user"/>
    /// is the user buffer cmd.ptr points at; cpages and faults are written back only on success.</summary>
    public Errno Ioctl(HmmDmirrorIoctl command, ref HmmDmirrorCmd user, Span<byte> ptr)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if ((user.Addr & ~Arch.PageMask) != 0)
            return Errno.EINVAL;
        // The kernel's only range check: npages << PAGE_SHIFT may wrap, and a wrapped size that still
        // ends above addr passes (the commands then work on the wrapped size, as they do in C).
        if (user.Addr >= user.Addr + (user.Npages << Arch.PageShift))
            return Errno.EINVAL;
        var cmd = new IoctlCmd { Addr = user.Addr, Npages = user.Npages, Ptr = ptr };
        var err = command switch
        {
            HmmDmirrorIoctl.Read => DoRw(ref cmd, write: false),
            HmmDmirrorIoctl.Write => DoRw(ref cmd, write: true),
            HmmDmirrorIoctl.MigrateToDev => MigrateToDevice(ref cmd),
            HmmDmirrorIoctl.MigrateToSys => MigrateToSystem(ref cmd),
            HmmDmirrorIoctl.Snapshot => Snapshot(ref cmd),
            HmmDmirrorIoctl.Exclusive => Exclusive(ref cmd),
            HmmDmirrorIoctl.CheckExclusive => CheckAtomic(cmd.Addr, cmd.Addr + (cmd.Npages << Arch.PageShift)),
            HmmDmirrorIoctl.Release => ReleaseChunks(),
            HmmDmirrorIoctl.Flags => SetFlagsCmd(cmd.Npages),
            _ => Errno.EINVAL,
        };
        if (err == Errno.None)
        {
            user.Cpages = cmd.Cpages;
            user.Faults = cmd.Faults;
        }
        return err;
    }

    private ref struct IoctlCmd
    {
        public ulong Addr;
        public ulong Npages;
        public ulong Cpages;
        public ulong Faults;
        public Span<byte> Ptr;
    }

    private Errno ReleaseChunks()
    {
        Device.RemoveChunks();
        return Errno.None;
    }

    private Errno SetFlagsCmd(ulong flags)
    {
        Flags = (DmirrorFlags)flags;
        return Errno.None;
    }

    /// <summary>dmirror_read / dmirror_write: copy through the mirror, faulting missing pages in with
    /// hmm_range_fault; `faults` counts the calls to dmirror_fault. The kernel stages the data in a vmalloc
    /// bounce buffer; the model copies page by page between the caller's buffer and the pages, so a call
    /// allocates nothing per page and concurrent calls on one file share no scratch (docs/performance.md).</summary>
    private Errno DoRw(ref IoctlCmd cmd, bool write)
    {
        ulong start = cmd.Addr, size = cmd.Npages << Arch.PageShift, end = start + size;
        if (size > int.MaxValue)
            return Errno.ENOMEM;
        // copy_from_user of the whole buffer comes first in dmirror_write: a short buffer fails before any fault.
        if (write && (ulong)cmd.Ptr.Length < size)
            return Errno.EFAULT;
        ulong cpages = 0;
        while (true)
        {
            Errno ret;
            lock (_mutex)
                ret = write ? DoWriteLocked(start, end, cmd.Ptr, cmd.Addr, ref cpages) : DoReadLocked(start, end, cmd.Ptr, cmd.Addr, ref cpages);
            if (ret == Errno.None)
                break;
            if (ret != Errno.ENOENT)
                return ret;
            start = cmd.Addr + (cpages << Arch.PageShift);
            ret = Fault(start, end, write);
            if (ret != Errno.None)
                return ret;
            cmd.Faults++;
        }
        // dmirror_read's copy_to_user of the whole bounce: a short buffer fails after the read did its work.
        if (!write && (ulong)cmd.Ptr.Length < size)
            return Errno.EFAULT;
        cmd.Cpages = cpages;
        return Errno.None;
    }

    /// <summary>dmirror_do_read: every page must be in the mirror (any tag). Pages past the end of a short
    /// <paramref name="user"/> buffer are read but not stored: the caller fails the copy-out with EFAULT.</summary>
    private Errno DoReadLocked(ulong start, ulong end, Span<byte> user, ulong userAddr, ref ulong cpages)
    {
        for (ulong vpfn = start >> Arch.PageShift; vpfn < end >> Arch.PageShift; vpfn++)
        {
            if (!_pt.TryLoad(vpfn, out var page, out _))
                return Errno.ENOENT;
            ulong off = (vpfn << Arch.PageShift) - userAddr;
            if (off + Arch.PageSize <= (ulong)user.Length)
                MemcpyFromPage(user.Slice((int)off, (int)Arch.PageSize), DataPage(page));
            cpages++;
        }
        return Errno.None;
    }

    /// <summary>dmirror_do_write: every page must be in the mirror tagged WRITE.</summary>
    private Errno DoWriteLocked(ulong start, ulong end, ReadOnlySpan<byte> user, ulong userAddr, ref ulong cpages)
    {
        for (ulong vpfn = start >> Arch.PageShift; vpfn < end >> Arch.PageShift; vpfn++)
        {
            if (!_pt.TryLoad(vpfn, out var page, out byte tag) || tag != TagWrite)
                return Errno.ENOENT;
            int off = (int)((vpfn << Arch.PageShift) - userAddr);
            MemcpyToPage(DataPage(page), 0, user.Slice(off, (int)Arch.PageSize));
            cpages++;
        }
        return Errno.None;
    }

    /// <summary>The page a device access through a mirror entry really touches: for a P2PDMA alias, the
    /// owner's device memory behind its BAR (a peer-to-peer TLP); otherwise the page itself.</summary>
    private static Page DataPage(Page page) => page.IsPciP2pDma
        ? (PciGetDrvdata(P2pdma.ProviderOf(page).Pdev) as DmirrorDevice ?? throw Bug($"no driver behind {page}")).AliasTarget(page)
        : page;

    /// <summary>dmirror_fault: hmm_range_fault in windows of 32 pages, each mapped into the mirror.</summary>
    private Errno Fault(ulong start, ulong end, bool write)
    {
        // mmget_not_zero fails once the mirrored process has exited: -EFAULT, or dmirror_read and
        // dmirror_write would fault an empty mirror again for ever.
        if (!MmgetNotZero(Mm))
            return Errno.EFAULT;
        bool p2p = (Flags & DmirrorFlags.AllowP2P) != 0;
        var pfns = new ulong[FaultWindow];
        var allowP2p = new bool[FaultWindow];
        var range = new HmmRange
        {
            Notifier = _notifier,
            HmmPfns = pfns,
            DefaultFlags = HmmPfn.ReqFault | (write ? HmmPfn.ReqWrite : 0),
            // An importer asks per page (ib_umem_odp: pfn_flags_mask = HMM_PFN_ALLOW_P2P), so the flag can be
            // taken back for a page whose alias cannot be DMA-mapped.
            PfnFlagsMask = p2p ? HmmPfn.AllowP2pFor(Kernel) : 0,
            DevPrivateOwner = Device,
        };
        for (ulong addr = start; addr < end;)
        {
            ulong next = Math.Min(end, addr + ((ulong)FaultWindow << Arch.PageShift));
            range.Start = addr;
            range.End = next;
            Array.Fill(allowP2p, p2p);
            var ret = RangeFaultWindow(range, allowP2p);
            if (ret != Errno.None)
                return ret;
            addr = next;
        }
        return Errno.None;
    }

    /// <summary>The caller contract of hmm_range_fault: take the notifier sequence, fault under mmap_lock
    /// (again on EBUSY), then under the mutex check that no invalidation ran meanwhile and let
    /// <paramref name="consumeLocked"/> use the pfns: it returns an errno to finish, or null to go round
    /// again. <paramref name="prepare"/> resets the request flags before each attempt.</summary>
    private Errno WithStableRange(HmmRange range, Action? prepare, Func<Errno?> consumeLocked)
    {
        for (int attempt = 0; attempt < RangeFaultRetries; attempt++)
        {
            prepare?.Invoke();
            range.NotifierSeq = MmuNotifier.MmuIntervalReadBegin(range.Notifier);
            Errno ret;
            MmapReadLock(Mm);
            try
            {
                ret = RangeFault.HmmRangeFault(Mm, range);
            }
            finally
            {
                MmapReadUnlock(Mm);
            }
            if (ret == Errno.EBUSY)
                continue;
            if (ret != Errno.None)
                return ret;
            lock (_mutex)
            {
                if (MmuNotifier.MmuIntervalReadRetry(range.Notifier, range.NotifierSeq))
                    continue;
                if (consumeLocked() is { } done)
                    return done;
            }
        }
        return Errno.EBUSY;   // HMM_RANGE_DEFAULT_TIMEOUT
    }

    /// <summary>dmirror_range_fault: dmirror_do_fault once the range is stable. An alias the importer
    /// cannot DMA-map loses its ALLOW_P2P and the window is faulted again (mlx5's fallback).</summary>
    private Errno RangeFaultWindow(HmmRange range, bool[] allowP2p)
    {
        int n = (int)((range.End - range.Start) >> Arch.PageShift);
        return WithStableRange(range,
            () =>
            {
                for (int i = 0; i < n; i++)
                    range.HmmPfns[i] = allowP2p[i] ? HmmPfn.AllowP2pFor(Kernel) : 0;
            },
            () => DmaMapAliases(range, allowP2p) ? DoFaultLocked(range) : null);
    }

    /// <summary>hmm_dma_map_pfn for the P2PDMA aliases of a window: pci_p2pdma_state decides whether this
    /// device can reach the owner's BAR. Refused pages get ALLOW_P2P cleared; false asks for another fault.</summary>
    private bool DmaMapAliases(HmmRange range, bool[] allowP2p)
    {
        int n = (int)((range.End - range.Start) >> Arch.PageShift);
        bool allMapped = true;
        for (int i = 0; i < n; i++)
        {
            ulong pfn = range.HmmPfns[i];
            if ((pfn & HmmPfn.Valid) == 0 || (pfn & HmmPfn.DevicePrivate) != 0)
                continue;
            var page = HmmPfn.ToPage(Kernel, pfn);
            if (!page.IsPciP2pDma)
                continue;
            var (type, _) = P2pdma.Map(Device.Pdev, page);
            if (type is PciP2pdmaMapType.BusAddr or PciP2pdmaMapType.ThruHostBridge)
                continue;
            allowP2p[i] = false;
            allMapped = false;
            CountVmEvent(Kernel, VmStatItem.P2pFallbackPages);
        }
        return allMapped;
    }

    /// <summary>dmirror_do_fault: store hmm_pfn_to_page() of every pfn. For a device-private page of this
    /// device that is the ZONE_DEVICE page itself, as the kernel's driver does (docs/fidelity.md); for
    /// another device's page reported through ALLOW_P2P, its P2PDMA alias.</summary>
    private Errno DoFaultLocked(HmmRange range)
    {
        ulong n = (range.End - range.Start) >> Arch.PageShift;
        for (ulong i = 0; i < n; i++)
        {
            ulong pfn = range.HmmPfns[i];
            if ((pfn & HmmPfn.Error) != 0 || (pfn & HmmPfn.Valid) == 0)
                Printk(Kernel, $"WARNING: {Device.Name}: dmirror_do_fault got hmm pfn 0x{pfn:x} at 0x{range.Start + (i << Arch.PageShift):x}");
            var page = HmmPfn.ToPage(Kernel, pfn);
            byte tag = 0;
            if ((pfn & HmmPfn.Write) != 0)
                tag = TagWrite;
            else if ((range.DefaultFlags & HmmPfn.ReqWrite) != 0)
                return Errno.EFAULT;
            if (page.IsPciP2pDma)
                CountVmEvent(Kernel, VmStatItem.P2pAliasPages);
            _pt.Store((range.Start >> Arch.PageShift) + i, page, tag);
        }
        return Errno.None;
    }

    /// <summary>dmirror_migrate_to_device.</summary>
    private Errno MigrateToDevice(ref IoctlCmd cmd)
    {
        ulong start = cmd.Addr, end = start + (cmd.Npages << Arch.PageShift);
        if (!MmgetNotZero(Mm))
            return Errno.EINVAL;
        // Per-call scratch, rented: concurrent ioctls on one file each get their own.
        var args = DmirrorDevice.RentMigrateVma(Arch.PtrsPerTable);
        args.PgmapOwner = Device;
        ulong[] src = args.Src, dst = args.Dst;
        ulong cpages = 0;
        var read = Errno.None;
        MmapReadLock(Mm);
        try
        {
            for (ulong addr = start, next; addr < end; addr = next)
            {
                var vma = VmaLookup(Mm, addr);
                if (vma is null || (VmaFlags(vma) & VmFlags.Read) == 0)
                    return Errno.EINVAL;
                next = Math.Min(end, addr + ((ulong)Arch.PtrsPerTable << Arch.PageShift));
                next = Math.Min(next, VmaEnd(vma));
                // One struct migrate_vma per call, refilled per window (as the kernel's is on the stack).
                args.Vma = vma;
                args.Start = addr;
                args.End = next;
                args.Flags = MigrateVmaSelect.System | MigrateVmaSelect.Compound;
                var ret = MigrateDevice.MigrateVmaSetup(Kernel, args);
                if (ret != Errno.None)
                    return ret;
                MigrateAllocAndCopy(args);
                MigrateDevice.MigrateVmaPages(Kernel, args);
                MigrateFinalizeAndMap(args);
                MigrateDevice.MigrateVmaFinalize(Kernel, args);
                // Return the migrated data for verification: only pages now in this device's mirror, copied
                // from the backing pages straight into the caller's buffer. The kernel reads the whole range
                // into a bounce buffer once every window has moved; the model reads each window as soon as it
                // has moved, while the pages it just copied are still in the CPU's caches. Windows go in
                // address order and the reading stops at the first page missing, so the bytes, cpages and
                // errno are the kernel's (docs/fidelity.md). mmap_lock before dmirror->mutex is the order
                // the invalidation callback already takes them in.
                if (read == Errno.None)
                {
                    lock (_mutex)
                        read = DoReadLocked(addr, next, cmd.Ptr, start, ref cpages);
                }
            }
        }
        finally
        {
            MmapReadUnlock(Mm);
            DmirrorDevice.ReturnMigrateVma(args);
        }
        if (read == Errno.None && (ulong)cmd.Ptr.Length < end - start)
            return Errno.EFAULT;
        cmd.Cpages = cpages;
        return read;
    }

    /// <summary>dmirror_migrate_alloc_and_copy: device pages (2 MiB ones for compound entries, with a
    /// fallback to 512 small ones) for every collected page, the data copied into their backing pages.</summary>
    private void MigrateAllocAndCopy(MigrateVma args)
    {
        var batch = PageBatch.Rent();
        try
        {
            MigrateAllocAndCopy(args, batch);
            batch.FlushCopies();
        }
        finally
        {
            PageBatch.Return(batch);
        }
    }

    private void MigrateAllocAndCopy(MigrateVma args, PageBatch batch)
    {
        // The window's small pages are allocated together before any copy (DevmemAllocPages).
        if ((Flags & DmirrorFlags.FailAlloc) == 0)
            batch.FillDevice(Device, PageBatch.CountSmall(args));
        int s = 0;
        for (ulong addr = args.Start; addr < args.End;)
        {
            bool isLarge = (args.Src[s] & MigratePfn.Compound) != 0;
            ulong write = args.Src[s] & MigratePfn.Write;
            var spage = MigratePfn.ToPage(Kernel, args.Src[s]);
            if ((args.Src[s] & MigratePfn.Migrate) == 0 || !spage.IsNull && spage.IsZoneDevice)
            {
                if (!spage.IsNull && spage.IsZoneDevice)
                    Printk(Kernel, $"WARNING: {Device.Name}: page already in device {spage}");
                s++;
                addr += Arch.PageSize;
                continue;
            }
            Page dpage;
            if ((Flags & DmirrorFlags.FailAlloc) != 0)
            {
                Flags &= ~DmirrorFlags.FailAlloc;
                dpage = default;
            }
            else
            {
                dpage = isLarge ? Device.DevmemAllocPage(true) : batch.TakeDevice(Device);
            }
            if (dpage.IsNull)
            {
                if (!isLarge)
                {
                    s++;
                    addr += Arch.PageSize;
                    continue;
                }
                int nr = spage.IsNull ? Arch.PtrsPerTable : spage.Folio.NrPages;
                for (int i = 0; i < nr && addr < args.End; i++)
                {
                    var small = Device.DevmemAllocPage(false);
                    DmirrorDevice.SetOwner(small, this);
                    args.Dst[s] = MigratePfn.FromPage(small) | write;
                    CopyToBacking(small, spage.IsNull ? default : spage.Nth(i));
                    s++;
                    addr += Arch.PageSize;
                }
                continue;
            }
            // The chunk and index are looked up once for the owner and the backing page.
            var chunk = DmirrorDevice.ChunkOf(dpage);
            int idx = chunk.IndexOf(dpage);
            chunk.SetOwner(idx, this);
            args.Dst[s] = MigratePfn.FromPage(dpage) | write;
            if (isLarge && dpage.Folio.IsLarge)
            {
                args.Dst[s] |= MigratePfn.Compound;
                var rpage = DmirrorDevice.BackingPage(dpage);
                int nrPages = dpage.Folio.NrPages;
                if (spage.IsNull)
                {
                    for (int i = 0; i < nrPages; i++)
                        ClearHighpage(rpage.Nth(i));
                }
                else
                {
                    CopyHighpages(rpage, spage, nrPages);
                }
                s += nrPages;
                addr += (ulong)nrPages << Arch.PageShift;
                continue;
            }
            // A small device page's backing page is its own (BACKING_PAGE without the THP-tail case).
            batch.AddCopy(Device.IsPrivate ? chunk.Backing(idx) : dpage, spage);
            s++;
            addr += Arch.PageSize;
        }
    }

    private static void CopyToBacking(Page dpage, Page spage) => CopyPage(DmirrorDevice.BackingPage(dpage), spage);

    /// <summary>copy_highpage / clear_highpage into a destination the CPU can address.</summary>
    private static void CopyPage(Page dst, Page src)
    {
        if (!src.IsNull)
            CopyHighpage(dst, src);
        else
            ClearHighpage(dst);
    }

    /// <summary>dmirror_migrate_finalize_and_map: the backing pages of migrated pages enter the mirror.</summary>
    private void MigrateFinalizeAndMap(MigrateVma args)
    {
        lock (_mutex)
        {
            ulong startPfn = args.Start >> Arch.PageShift, endPfn = args.End >> Arch.PageShift;
            for (ulong pfn = startPfn, i = 0; pfn < endPfn; pfn++, i++)
            {
                if ((args.Src[i] & MigratePfn.Migrate) == 0)
                    continue;
                var dpage = MigratePfn.ToPage(Kernel, args.Dst[i]);
                if (dpage.IsNull)
                    continue;
                int nr = (args.Dst[i] & MigratePfn.Compound) != 0 ? dpage.Folio.NrPages : 1;
                var rpage = DmirrorDevice.BackingPage(dpage);
                byte tag = (args.Dst[i] & MigratePfn.Write) != 0 ? TagWrite : (byte)0;
                for (int k = 0; k < nr; k++)
                    _pt.Store(pfn + (ulong)k, rpage.Nth(k), tag);
            }
        }
    }

    /// <summary>dmirror_migrate_to_system.</summary>
    private Errno MigrateToSystem(ref IoctlCmd cmd)
    {
        ulong start = cmd.Addr, end = start + (cmd.Npages << Arch.PageShift);
        if (!MmgetNotZero(Mm))
            return Errno.EINVAL;
        // Per-call scratch, rented: concurrent ioctls on one file each get their own.
        var args = DmirrorDevice.RentMigrateVma(Arch.PtrsPerTable);
        args.PgmapOwner = Device;
        ulong[] src = args.Src, dst = args.Dst;
        cmd.Cpages = 0;
        MmapReadLock(Mm);
        try
        {
            for (ulong addr = start, next; addr < end; addr = next)
            {
                var vma = VmaLookup(Mm, addr);
                if (vma is null || (VmaFlags(vma) & VmFlags.Read) == 0)
                    return Errno.EINVAL;
                next = Math.Min(end, addr + ((ulong)Arch.PtrsPerTable << Arch.PageShift));
                next = Math.Min(next, VmaEnd(vma));
                Array.Clear(dst);
                // One struct migrate_vma per call, refilled per window (as the kernel's is on the stack).
                args.Vma = vma;
                args.Start = addr;
                args.End = next;
                args.Flags = Device.SelectDevice() | MigrateVmaSelect.Compound;
                var ret = MigrateDevice.MigrateVmaSetup(Kernel, args);
                if (ret != Errno.None)
                    return ret;
                if (Device.FaultAllocAndCopy(args, this) != VmFaultResult.None)
                {
                    MigrateDevice.MigrateVmaFinalize(Kernel, args);
                    return Errno.ENOMEM;
                }
                MigrateDevice.MigrateVmaPages(Kernel, args);
                for (ulong i = 0; i < args.Npages; i++)
                    if ((args.Src[i] & MigratePfn.Valid) != 0 && (args.Src[i] & MigratePfn.Migrate) != 0)
                        cmd.Cpages++;
                MigrateDevice.MigrateVmaFinalize(Kernel, args);
            }
        }
        finally
        {
            MmapReadUnlock(Mm);
            DmirrorDevice.ReturnMigrateVma(args);
        }
        return Errno.None;
    }

    /// <summary>dmirror_snapshot: hmm_range_fault without faulting, in windows of 32 pages, each under a
    /// temporary interval notifier, one protection byte per page.</summary>
    private Errno Snapshot(ref IoctlCmd cmd)
    {
        ulong start = cmd.Addr, end = start + (cmd.Npages << Arch.PageShift);
        if (!MmgetNotZero(Mm))
            return Errno.EINVAL;
        var pfns = new ulong[FaultWindow];
        var perm = new byte[FaultWindow];
        ulong outOff = 0;
        for (ulong addr = start, next; addr < end; addr = next)
        {
            next = Math.Min(addr + ((ulong)FaultWindow << Arch.PageShift), end);
            int n = (int)((next - addr) >> Arch.PageShift);
            var ret = RangeSnapshot(addr, next, pfns, perm);
            if (ret != Errno.None)
                return ret;
            if ((ulong)cmd.Ptr.Length < outOff + (ulong)n)
                return Errno.EFAULT;
            perm.AsSpan(0, n).CopyTo(cmd.Ptr[(int)outOff..]);
            cmd.Cpages += (ulong)n;
            outOff += (ulong)n;
        }
        return Errno.None;
    }

    /// <summary>dmirror_range_snapshot: one window under a temporary notifier that only bumps the sequence.</summary>
    private Errno RangeSnapshot(ulong start, ulong end, ulong[] pfns, byte[] perm)
    {
        var notifier = MmuNotifier.MmuIntervalNotifierInsert(Mm, start, end - start, (mni, _, seq) =>
        {
            lock (_mutex)
                MmuNotifier.MmuIntervalSetSeq(mni, seq);
            return true;
        });
        try
        {
            var range = new HmmRange { Notifier = notifier, HmmPfns = pfns, Start = start, End = end, DevPrivateOwner = Device };
            int n = (int)((end - start) >> Arch.PageShift);
            return WithStableRange(range, null, () =>
            {
                for (int i = 0; i < n; i++)
                    perm[i] = MkEntry(pfns[i]);
                return Errno.None;
            });
        }
        finally
        {
            MmuNotifier.MmuIntervalNotifierRemove(notifier);
        }
    }

    /// <summary>dmirror_mkentry.</summary>
    private byte MkEntry(ulong entry)
    {
        if ((entry & HmmPfn.Error) != 0)
            return (byte)DmirrorProt.Error;
        if ((entry & HmmPfn.Valid) == 0)
            return (byte)DmirrorProt.None;
        var page = HmmPfn.ToPage(Kernel, entry);
        DmirrorProt perm;
        if (page.IsDevicePrivate)
            perm = DmirrorDevice.ChunkOf(page).Device == Device ? DmirrorProt.DevPrivateLocal : DmirrorProt.DevPrivateRemote;
        else if (page.IsDeviceCoherent)
            perm = DmirrorDevice.ChunkOf(page).Device == Device ? DmirrorProt.DevCoherentLocal : DmirrorProt.DevCoherentRemote;
        else if (IsZeroPfn(Kernel, page.ToPfn()))
            perm = DmirrorProt.Zero;
        else
            perm = DmirrorProt.None;
        perm |= (entry & HmmPfn.Write) != 0 ? DmirrorProt.Write : DmirrorProt.Read;
        int order = HmmPfn.ToMapOrder(entry);
        if (order + Arch.PageShift == Arch.PmdShift)
            perm |= DmirrorProt.Pmd;
        else if (order + Arch.PageShift == Arch.PudShift)
            perm |= DmirrorProt.Pud;
        return (byte)perm;
    }

    /// <summary>dmirror_exclusive: make every page device-exclusive and map it ATOMIC.</summary>
    private Errno Exclusive(ref IoctlCmd cmd)
    {
        ulong start = cmd.Addr, end = start + (cmd.Npages << Arch.PageShift);
        if (!MmgetNotZero(Mm))
            return Errno.EINVAL;
        Errno ret = Errno.None;
        MmapReadLock(Mm);
        try
        {
            for (ulong addr = start; ret == Errno.None && addr < end; addr += Arch.PageSize)
            {
                ret = MakeDeviceExclusive(Mm, addr, null, out var page);
                if (ret != Errno.None)
                    break;
                lock (_mutex)
                    _pt.Store(addr >> Arch.PageShift, page, TagAtomic);
                page.Folio.Unlock();
                page.Folio.Put();
            }
        }
        finally
        {
            MmapReadUnlock(Mm);
        }
        if (ret != Errno.None)
            return ret;
        ulong cpages = 0;
        lock (_mutex)
            ret = DoReadLocked(start, end, cmd.Ptr, start, ref cpages);
        if (ret == Errno.None && (ulong)cmd.Ptr.Length < end - start)
            return Errno.EFAULT;
        cmd.Cpages = cpages;
        return ret;
    }

    /// <summary>dmirror_check_atomic.</summary>
    private Errno CheckAtomic(ulong start, ulong end)
    {
        ulong first = start >> Arch.PageShift, last = end >> Arch.PageShift;
        lock (_mutex)
        {
            // xa_for_each_range visits only the entries present, so a huge range costs what the mirror holds.
            if (last > first)
            {
                foreach (var e in _pt.ForEachRange(first, last - 1))
                    if (e.Tag == TagAtomic)
                        return Errno.EPERM;
            }
        }
        return Errno.None;
    }

    /// <summary>close() (dmirror_fops_release): drop the notifier, evict every chunk of the device back
    /// to system memory (every process's pages, as the kernel's release does), destroy the mirror.</summary>
    public void Dispose()
    {
        if (_closed)
            return;
        _closed = true;
        MmuNotifier.MmuIntervalNotifierRemove(_notifier);
        Device.EvictAll();
        lock (_mutex)
            _pt.Clear();
    }
}
