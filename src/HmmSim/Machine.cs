namespace HmmSim;

/// <summary>A booted machine: the composition root of shared/API.md. Every public operation runs
/// under a shared machine lock; the invariant checker takes it exclusively, so it always sees a
/// quiescent state even when processes are driven from several threads.</summary>
public sealed class Machine : IDisposable
{
    private readonly ReaderWriterLockSlim _opLock = new(LockRecursionPolicy.SupportsRecursion);
    private readonly Lock _procLock = new();
    private readonly Dictionary<int, Process> _processes = [];
    private readonly long[] _bootFreeBlocks;
    private int _nextPid = 1;
    private bool _disposed;

    public Machine(MachineConfig? config = null)
    {
        Config = config ?? new MachineConfig();
        Validate(Config);
        Kernel = new Kernel(Config);
        _bootFreeBlocks = Kernel.Buddy.FreeBlocksPerOrder();
        BootFreePages = Kernel.Buddy.NrFreePages;
        Kernel.Dmesg.Log($"Linux version 6.19.0-hmmsim ({Config.Architecture}, {Config.PhysicalAddressBits}-bit physical, {Config.DevicePrivateDesign})");
        Kernel.Dmesg.Log($"Memory: {Config.RamBytes >> 10}K system RAM, {Kernel.Hugetlb.Total} hugetlb pages reserved");
        _dmirrors = ProbeDmirrors();
    }

    private readonly DmirrorDevice?[] _dmirrors;

    /// <summary>hmm_dmirror_init: units 0 and 1 device-private, 2 and 3 device-coherent over "special
    /// purpose memory" the model places in the first free physical space above RAM (spm_addr_dev0/1).
    /// A unit whose first chunk cannot be set up is absent; the others still probe.</summary>
    private DmirrorDevice?[] ProbeDmirrors()
    {
        AssignBars();
        var devices = new DmirrorDevice?[4];
        for (int unit = 0; unit < 2; unit++)
        {
            var dev = new DmirrorDevice(Kernel, unit, DmirrorMemoryType.DevicePrivate, 0);
            devices[unit] = dev.Init() == Errno.None ? dev : null;
        }
        var spm = new ulong[2];
        for (int i = 0; i < 2; i++)
        {
            var err = Kernel.Resources.GetFreeMemRegion(DmirrorDevice.DevmemChunkSize, DmirrorDevice.DevmemChunkSize, $"hmm_dmirror_spm{i}", IoResDesc.None, GfrFlags.RequestRegion, out var res);
            if (err != Errno.None)
            {
                Kernel.Dmesg.Log($"hmm_dmirror: no free physical space above RAM for spm_addr_dev{i} ({Memremap.ErrName(err)}); device-coherent units are absent");
                return devices;
            }
            spm[i] = res!.Start;
        }
        // (MINOR - 2) ? spm_addr_dev0 : spm_addr_dev1 — unit 2 takes dev1's range, unit 3 dev0's, as the module does.
        for (int unit = 2; unit < 4; unit++)
        {
            var dev = new DmirrorDevice(Kernel, unit, DmirrorMemoryType.DeviceCoherent, unit - 2 != 0 ? spm[0] : spm[1]);
            devices[unit] = dev.Init() == Errno.None ? dev : null;
        }
        foreach (var d in devices)
            if (d is not null)
                Kernel.Dmesg.Log($"{d.Name}: probed ({(d.IsPrivate ? "device private" : "device coherent")})");
        return devices;
    }

    /// <summary>The size of the BAR each device-private unit exposes its memory through.</summary>
    internal const ulong P2pBarSize = 1UL << 30;

    /// <summary>Firmware's BAR assignment: each device-private unit gets a BAR inside a PCI window when
    /// the machine has any, else in free physical space, and registers it as P2PDMA memory
    /// (pci_p2pdma_add_resource, as nouveau does with BAR1 in the series).</summary>
    private void AssignBars()
    {
        var windows = Kernel.Resources.TopLevel.Where(r => (r.Flags & IoResourceFlags.Window) != 0).ToList();
        for (int unit = 0; unit < 2; unit++)
        {
            var ep = Kernel.Pci.Endpoints[unit];
            string name = $"{ep.Name} BAR1 (hmm_dmirror{unit})";
            Resource? bar = null;
            foreach (var w in windows)
                if (Kernel.Resources.GetFreeMemRegion(w, P2pBarSize, P2pBarSize, name, IoResDesc.None, GfrFlags.Descending | GfrFlags.RequestRegion, out bar) == Errno.None)
                    break;
            if (bar is null && windows.Count == 0)
                Kernel.Resources.GetFreeMemRegion(P2pBarSize, P2pBarSize, name, IoResDesc.None, GfrFlags.Descending | GfrFlags.RequestRegion, out bar);
            if (bar is null)
            {
                Kernel.Dmesg.Log($"pci {ep.Name}: no space for a {P2pBarSize >> 20} MB BAR1; hmm_dmirror{unit} has no P2P memory");
                continue;
            }
            ep.Bar = new PhysicalRange(bar.Start, P2pBarSize);
            var err = P2pdma.PciP2pdmaAddResource(Kernel, ep, P2pBarSize, 0);
            if (err != Errno.None)
                Kernel.Dmesg.Log($"pci {ep.Name}: PCI P2P memory allocation failed ({Memremap.ErrName(err)}), HMM P2P won't be supported");
        }
    }

    /// <summary>open("/dev/hmm_dmirrorN") in <paramref name="process"/>.</summary>
    internal Dmirror OpenDmirror(Process process, int unit)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)unit >= (uint)_dmirrors.Length || _dmirrors[unit] is not { } dev)
            throw new ErrnoException(Errno.ENOENT, $"/dev/hmm_dmirror{unit}: no such device (see Dmesg)");
        Dmirror d;
        using (Operation())
            d = new Dmirror(this, process, dev);
        return d;
    }

    /// <summary>Whether unit N probed (its /dev node exists).</summary>
    public bool HasDmirror(int unit) => (uint)unit < (uint)_dmirrors.Length && _dmirrors[unit] is not null;

    public MachineConfig Config { get; }
    internal Kernel Kernel { get; }
    internal long BootFreePages { get; }

    private static void Validate(MachineConfig c)
    {
        var arch = Arch.For(c.Architecture);
        if (c.PhysicalAddressBits < 32 || c.PhysicalAddressBits > arch.MaxPhysmemBits)
            throw new ArgumentException($"PhysicalAddressBits must be 32..{arch.MaxPhysmemBits} on {c.Architecture}, not {c.PhysicalAddressBits}", nameof(c));
        const ulong block = 1UL << (Buddy.MaxPageOrder + Arch.PageShift);
        if (c.RamBytes < 64UL << 20 || c.RamBytes % block != 0)
            throw new ArgumentException($"RamBytes must be a multiple of 4 MiB and at least 64 MiB, not {c.RamBytes}", nameof(c));
        if (c.RamBytes > 1UL << 44 || c.RamBytes > 1UL << c.PhysicalAddressBits)
            throw new ArgumentException($"RamBytes {c.RamBytes} does not fit the physical address space (or the model's 16 TiB limit)", nameof(c));
        if (c.HugetlbPages < 0)
            throw new ArgumentException("HugetlbPages cannot be negative", nameof(c));
        if (c.PciWindows is null)
            throw new ArgumentException("PciWindows cannot be null", nameof(c));
    }

    public Process CreateProcess()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Process p;
        using (Operation())
            p = Register(new MmStruct(Kernel));
        AfterOperation();
        return p;
    }

    /// <summary>An unlinked tmpfs file of <paramref name="size"/> bytes.</summary>
    public ShmemFile CreateFile(ulong size)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ShmemFile(this, size);
    }

    /// <summary>/proc/vmstat: the kernel's counter names where Linux has them.</summary>
    public IReadOnlyDictionary<string, long> VmStat
    {
        get
        {
            var d = new SortedDictionary<string, long>(StringComparer.Ordinal);
            for (var i = (VmStatItem)0; i < VmStatItem.Count; i++)
                d[HmmSim.VmStat.Name(i)] = Kernel.VmStat[i];
            d["nr_free_pages"] = Kernel.Buddy.NrFreePages;
            d["nr_zone_device_pages"] = Kernel.VmStat[VmStatItem.NrZoneDevicePages];
            d["hugetlb_pages_total"] = Kernel.Hugetlb.Total;
            d["hugetlb_pages_free"] = Kernel.Hugetlb.Free;
            d["struct_page_bytes_kernel"] = Kernel.Memmap.KernelStructPageBytes;
            d["struct_page_bytes_model"] = Kernel.Memmap.ModelMemmapBytes;
            d["page_data_bytes_model"] = Kernel.Memmap.Data.BytesReserved;
            return d;
        }
    }

    /// <summary>/proc/iomem.</summary>
    public string Iomem() => Kernel.Resources.ProcIomem();

    /// <summary>The kernel log.</summary>
    public IReadOnlyList<string> Dmesg() => Kernel.Dmesg.Snapshot();

    /// <summary>Runs the DEBUG_VM checker now; throws <see cref="KernelBugException"/> on any finding.</summary>
    public void CheckInvariants()
    {
        _opLock.EnterWriteLock();
        try
        {
            Process[] procs;
            lock (_procLock)
                procs = [.. _processes.Values];
            DebugVm.Check(Kernel, procs.Select(p => p.Mm).ToArray());
            InvariantChecks++;
        }
        finally
        {
            _opLock.ExitWriteLock();
        }
    }

    internal OpScope Operation()
    {
        _opLock.EnterReadLock();
        return new OpScope(_opLock);
    }

    internal readonly struct OpScope(ReaderWriterLockSlim l) : IDisposable
    {
        public void Dispose() => l.ExitReadLock();
    }

    internal void AfterOperation()
    {
        if (Config.CheckInvariants)
            CheckInvariants();
    }

    internal Process Register(MmStruct mm)
    {
        lock (_procLock)
        {
            var p = new Process(this, _nextPid++, mm);
            _processes.Add(p.Pid, p);
            return p;
        }
    }

    internal void Unregister(Process p)
    {
        lock (_procLock)
            _processes.Remove(p.Pid);
    }

    /// <summary>How many times the DEBUG_VM checker has run on this machine.</summary>
    public long InvariantChecks { get; private set; }

    internal int ProcessCount
    {
        get
        {
            lock (_procLock)
                return _processes.Count;
        }
    }

    /// <summary>Buddy free blocks per order right after boot, for the teardown leak check.</summary>
    internal long[] BootFreeBlocks => _bootFreeBlocks;

    /// <summary>Exits every process; with the checker on, verifies that teardown returned every page.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        Process[] procs;
        lock (_procLock)
            procs = [.. _processes.Values];
        foreach (var p in procs)
            p.Dispose();
        using (Operation())
        {
            // hmm_dmirror_exit: each device's release evicts and unmaps its chunks.
            foreach (var d in _dmirrors)
                d?.RemoveChunks();
        }
        _disposed = true;
        if (Config.CheckInvariants)
            DebugVm.CheckTeardown(Kernel, BootFreePages);
    }
}
