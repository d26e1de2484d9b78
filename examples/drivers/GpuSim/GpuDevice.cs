namespace GpuSim;

/// <summary>A GPU-like device in the shape of nouveau's dmem: device-private memory registered with
/// the kernel, a page table of its own that mirrors one process, migration to VRAM when the device
/// touches a page (migrate_vma), and migrate_to_ram when the CPU touches it again. Its VRAM is a
/// byte array the CPU cannot address, which is the point of device-private memory.</summary>
public sealed class GpuDevice
{
    private readonly KernelState _kernel;
    private readonly DevPagemap _pgmap;
    private readonly byte[] _vram;
    private readonly Stack<ulong> _free = new();
    private readonly Lock _lock = new();

    private GpuDevice(KernelState kernel, ulong vramBytes)
    {
        _kernel = kernel;
        _vram = new byte[vramBytes];
        _pgmap = new DevPagemap(MemoryType.DevicePrivate, this, new DevPagemapOps
        {
            FolioFree = FolioFree,
            MigrateToRam = MigrateToRam,
        });
    }

    /// <summary>module_init: register <paramref name="vramBytes"/> of device-private memory; null when the
    /// kernel has no room for it (today's design on a machine without free physical address space).</summary>
    public static GpuDevice? Probe(KernelState kernel, ulong vramBytes)
    {
        var gpu = new GpuDevice(kernel, vramBytes);
        var err = Memremap.AddDevicePrivateMemory(kernel, gpu._pgmap, vramBytes, "gpusim");
        if (err != Errno.None)
        {
            Printk(kernel, $"gpusim: cannot register {vramBytes >> 20} MiB of device memory ({err})");
            return null;
        }
        for (ulong i = vramBytes >> Arch.PageShift; i-- > 0;)
            gpu._free.Push(i);
        Printk(kernel, $"gpusim: {vramBytes >> 20} MiB of device-private memory");
        return gpu;
    }

    /// <summary>How many device pages are in use.</summary>
    public int PagesInUse
    {
        get
        {
            lock (_lock)
                return (int)(_vram.Length >> Arch.PageShift) - _free.Count;
        }
    }

    /// <summary>The device reads <paramref name="dst"/>.Length bytes at page-aligned <paramref name="addr"/>
    /// of <paramref name="mm"/>: a device fault migrates every page not yet in VRAM there first.</summary>
    public Errno DeviceRead(MmStruct mm, ulong addr, Span<byte> dst)
    {
        ulong npages = (ulong)dst.Length >> Arch.PageShift;
        var err = DeviceFault(mm, addr, npages);
        if (err != Errno.None)
            return err;
        for (ulong i = 0; i < npages; i++)
        {
            if (!TryVramIndex(mm, addr + (i << Arch.PageShift), out ulong idx))
                return Errno.EFAULT;   // the CPU took it back between the fault and the read
            _vram.AsSpan((int)(idx << Arch.PageShift), (int)Arch.PageSize).CopyTo(dst[(int)(i << Arch.PageShift)..]);
        }
        return Errno.None;
    }

    /// <summary>The device fault handler: migrate_vma of the range from system memory to VRAM.</summary>
    public Errno DeviceFault(MmStruct mm, ulong start, ulong npages)
    {
        if (!MmgetNotZero(mm))
            return Errno.EFAULT;
        MmapReadLock(mm);
        try
        {
            ulong end = start + (npages << Arch.PageShift);
            for (ulong addr = start, next; addr < end; addr = next)
            {
                var vma = VmaLookup(mm, addr);
                if (vma is null)
                    return Errno.EFAULT;
                next = Math.Min(end, VmaEnd(vma));
                var args = new MigrateVma
                {
                    Vma = vma,
                    Start = addr,
                    End = next,
                    Src = new ulong[(next - addr) >> Arch.PageShift],
                    Dst = new ulong[(next - addr) >> Arch.PageShift],
                    PgmapOwner = this,
                    Flags = MigrateVmaSelect.System,
                };
                var err = MigrateDevice.MigrateVmaSetup(_kernel, args);
                if (err != Errno.None)
                    return err;
                for (int i = 0; i < args.Src.Length; i++)
                {
                    if ((args.Src[i] & MigratePfn.Migrate) == 0)
                        continue;
                    var dpage = AllocDevicePage();
                    if (dpage.IsNull)
                        continue;   // out of VRAM: this page stays in system memory
                    var spage = MigratePfn.ToPage(_kernel, args.Src[i]);
                    var vram = VramOf(dpage);
                    if (spage.IsNull)
                        vram.Clear();   // a hole: the device gets a zeroed page
                    else
                        MemcpyFromPage(vram, spage);
                    args.Dst[i] = MigratePfn.FromPage(dpage) | (args.Src[i] & MigratePfn.Write);
                }
                MigrateDevice.MigrateVmaPages(_kernel, args);
                MigrateDevice.MigrateVmaFinalize(_kernel, args);
            }
            return Errno.None;
        }
        finally
        {
            MmapReadUnlock(mm);
        }
    }

    /// <summary>migrate_to_ram: the CPU touched a page in VRAM; copy it back to a new system page.</summary>
    private VmFaultResult MigrateToRam(VmFault vmf)
    {
        var args = new MigrateVma
        {
            Vma = vmf.Vma,
            Start = vmf.Address,
            End = vmf.Address + Arch.PageSize,
            Src = new ulong[1],
            Dst = new ulong[1],
            PgmapOwner = this,
            Flags = MigrateVmaSelect.DevicePrivate,
            FaultPage = vmf.Page,
        };
        if (MigrateDevice.MigrateVmaSetup(_kernel, args) != Errno.None)
            return VmFaultResult.Sigbus;
        if ((args.Src[0] & MigratePfn.Migrate) != 0)
        {
            if (FolioAlloc(_kernel, 0) is not { } folio)
            {
                MigrateDevice.MigrateVmaFinalize(_kernel, args);
                return VmFaultResult.Oom;
            }
            FolioLock(folio);
            var spage = MigratePfn.ToPage(_kernel, args.Src[0]);
            MemcpyToPage(FolioPage(folio, 0), 0, VramOf(spage));
            args.Dst[0] = MigratePfn.FromPage(FolioPage(folio, 0)) | (args.Src[0] & MigratePfn.Write);
        }
        MigrateDevice.MigrateVmaPages(_kernel, args);
        MigrateDevice.MigrateVmaFinalize(_kernel, args);
        return VmFaultResult.None;
    }

    /// <summary>A free device page, initialised (locked, one reference) for a migration destination.</summary>
    private Page AllocDevicePage()
    {
        ulong idx;
        lock (_lock)
        {
            if (_free.Count == 0)
                return default;
            idx = _free.Pop();
        }
        var page = Memremap.PageOf(_kernel, _pgmap, idx);
        Memremap.ZoneDevicePageInit(page);
        return page;
    }

    /// <summary>folio_free: the last reference to a device page went; it is free VRAM again.</summary>
    private void FolioFree(Folio folio)
    {
        ulong idx = IndexOf(FolioPage(folio, 0));
        lock (_lock)
            _free.Push(idx);
    }

    private ulong IndexOf(Page page) =>
        (_pgmap.InDevicePrivateSpace ? page.ToDevicePrivateIndex().Value : PageToPfn(page).Value) - _pgmap.First;

    private Span<byte> VramOf(Page page) => _vram.AsSpan((int)(IndexOf(page) << Arch.PageShift), (int)Arch.PageSize);

    /// <summary>Whether the page at <paramref name="addr"/> is in this device's VRAM now, and where:
    /// what the device's own page table would know, read here through hmm_range_fault's snapshot.</summary>
    private bool TryVramIndex(MmStruct mm, ulong addr, out ulong idx)
    {
        idx = 0;
        var pfns = new ulong[1];
        var notifier = MmuNotifier.MmuIntervalNotifierInsert(mm, addr, Arch.PageSize, (_, _, _) => true);
        try
        {
            var range = new HmmRange { Notifier = notifier, HmmPfns = pfns, Start = addr, End = addr + Arch.PageSize, DevPrivateOwner = this };
            range.NotifierSeq = MmuNotifier.MmuIntervalReadBegin(notifier);
            MmapReadLock(mm);
            Errno err;
            try
            {
                err = RangeFault.HmmRangeFault(mm, range);
            }
            finally
            {
                MmapReadUnlock(mm);
            }
            if (err != Errno.None || (pfns[0] & HmmPfn.Valid) == 0)
                return false;
            var page = HmmPfn.ToPage(_kernel, pfns[0]);
            if (!IsDevicePrivatePage(page) || PagePgmap(page) != _pgmap)
                return false;
            idx = IndexOf(page);
            return true;
        }
        finally
        {
            MmuNotifier.MmuIntervalNotifierRemove(notifier);
        }
    }

    /// <summary>module_exit: evict every page still in VRAM and unregister the memory.</summary>
    public void Remove()
    {
        ulong npages = (ulong)_vram.Length >> Arch.PageShift;
        var src = new ulong[npages];
        var dst = new ulong[npages];
        MigrateDevice.MigrateDeviceRange(_kernel, src, MigratePfn.FromPage(Memremap.PageOf(_kernel, _pgmap, 0)), npages);
        for (ulong i = 0; i < npages; i++)
        {
            if ((src[i] & MigratePfn.Migrate) == 0)
                continue;
            var folio = FolioAlloc(_kernel, 0) ?? throw Bug("gpusim: no memory to evict device memory into");
            FolioLock(folio);
            MemcpyToPage(FolioPage(folio, 0), 0, VramOf(MigratePfn.ToPage(_kernel, src[i])));
            dst[i] = MigratePfn.FromPage(FolioPage(folio, 0)) | (src[i] & MigratePfn.Write);
        }
        MigrateDevice.MigrateDevicePages(_kernel, src, dst, npages);
        MigrateDevice.MigrateDeviceFinalize(_kernel, src, dst, npages);
        Memremap.RemoveDevicePrivateMemory(_kernel, _pgmap);
    }
}
