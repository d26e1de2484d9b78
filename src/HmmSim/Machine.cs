using HmmSim.Drivers.TestHmm;
using HmmSim.Kernel;
using K = HmmSim.Kernel;

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

    static Machine() => InstallKernelExceptions();

    /// <summary>What escapes the kernel is the contract's exceptions: an oops is a
    /// <see cref="KernelBugException"/>, a signal to the task a <see cref="SegmentationFaultException"/>.</summary>
    internal static void InstallKernelExceptions()
    {
        KernelExceptions.Oops = m => new KernelBugException(m);
        KernelExceptions.Sigsegv = (a, m) => new SegmentationFaultException(a, m);
        KernelExceptions.Sigbus = (a, m) => new BusErrorException(a, m);
        KernelExceptions.ErrnoFailure = (e, m) => new ErrnoException((Errno)e, m);
    }

    /// <summary>Boot a kernel with <paramref name="config"/> (defaults when null) and load test_hmm, whose
    /// dmirror units probe as /dev/hmm_dmirror0.. (see <see cref="HasDmirror"/> and <see cref="Dmesg"/>).
    /// Throws <see cref="ArgumentException"/> for a configuration the kernel cannot boot with (see
    /// <see cref="MachineConfig"/>'s properties for the limits).</summary>
    public Machine(MachineConfig? config = null)
    {
        Config = config ?? new MachineConfig();
        Validate(Config);
        Kernel = new KernelState(ToKernelConfig(Config));
        _bootFreeBlocks = Kernel.Buddy.FreeBlocksPerOrder();
        BootFreePages = Kernel.Buddy.NrFreePages;
        Kernel.Dmesg.Log($"Linux version 6.19.0-hmmsim ({Config.Architecture}, {Config.PhysicalAddressBits}-bit physical, {Config.DevicePrivateDesign})");
        Kernel.Dmesg.Log($"Memory: {Config.RamBytes >> 10}K system RAM, {Kernel.Hugetlb.Total} hugetlb pages reserved");
        if (_traceEveryMachine.Value is { } trace)
        {
            Kernel.Trace = trace;
            trace.Event(0, "hmmsim_machine_boot", $"design={Config.DevicePrivateDesign} arch={Config.Architecture} phys_bits={Config.PhysicalAddressBits} ram_mib={Config.RamBytes >> 20}");
        }
        _testHmm = TestHmm.HmmDmirrorInit(Kernel);   // modprobe test_hmm
    }

    // Async-local, so a command traces the machines it boots (and those of the tasks it starts) but
    // not those another command boots at the same time in the same process (the CLI's tests).
    private static readonly AsyncLocal<TraceBuffer?> _traceEveryMachine = new();

    /// <summary>For the CLI's --trace: every machine this flow boots from now on (on this thread or in
    /// tasks it starts) traces into one shared buffer (one header, each boot marked by an
    /// hmmsim_machine_boot event); null stops it. Returns the events written by the buffer being replaced.</summary>
    internal static long TraceEveryMachineTo(TextWriter? writer)
    {
        var old = _traceEveryMachine.Value;
        _traceEveryMachine.Value = writer is null ? null : new TraceBuffer(writer, Environment.ProcessorCount);
        if (old is null)
            return 0;
        old.Flush();
        return old.Entries;
    }

    private readonly TestHmm _testHmm;

    /// <summary>The kernel's boot configuration: the contract's values, converted explicitly.</summary>
    internal static KernelConfig ToKernelConfig(MachineConfig c) => new()
    {
        Architecture = (K.Architecture)c.Architecture,
        PhysicalAddressBits = c.PhysicalAddressBits,
        RamBytes = c.RamBytes,
        PciWindows = [.. c.PciWindows.Select(w => new K.PhysicalRange(w.Start, w.Length))],
        DevicePrivateDesign = (K.DevicePrivateDesign)c.DevicePrivateDesign,
        PciTopology = (K.PciTopology)c.PciTopology,
        Seed = c.Seed,
        CheckInvariants = c.CheckInvariants,
        Thp = (K.ThpPolicy)c.Thp,
        HugetlbPages = c.HugetlbPages,
        Variants = new K.KernelVariants
        {
            SoftleafMigration = (K.SoftleafMigrationRule)c.Variants.SoftleafMigration,
            HmmPfnLayout = (K.HmmPfnLayout)c.Variants.HmmPfnLayout,
            RmapMatch = (K.RmapMatch)c.Variants.RmapMatch,
            PgmapPlacement = (K.PgmapPlacement)c.Variants.PgmapPlacement,
            Zone = (K.DevicePrivateZone)c.Variants.Zone,
            Identity = (K.DevicePrivateIdentity)c.Variants.Identity,
            DevicePageMetadata = (K.DevicePageMetadata)c.Variants.DevicePageMetadata,
        },
    };

    /// <summary>The size of the BAR each device-private unit exposes its memory through.</summary>
    internal const ulong P2pBarSize = KernelState.P2pBarSize;

    /// <summary>open("/dev/hmm_dmirrorN") in <paramref name="process"/>.</summary>
    internal Dmirror OpenDmirror(Process process, int unit)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_testHmm.Device(unit) is null)
            throw new ErrnoException(Errno.ENOENT, $"/dev/hmm_dmirror{unit}: no such device (see Dmesg)");
        Dmirror d;
        using (Operation())
            d = new Dmirror(this, process, _testHmm.Open(unit, process.Mm));
        return d;
    }

    /// <summary>insmod: run an out-of-tree driver's module init against this machine's kernel. The driver
    /// sees only the kernel's exported API (namespace HmmSim.Kernel); what the init returns is the
    /// module, for the caller to drive. Operations the driver runs later take the machine's locks
    /// themselves (mmap_lock and the rest), as a module's do.</summary>
    public T LoadModule<T>(Func<KernelState, T> moduleInit)
    {
        ArgumentNullException.ThrowIfNull(moduleInit);
        ObjectDisposedException.ThrowIf(_disposed, this);
        T module;
        using (Operation())
            module = moduleInit(Kernel);
        AfterOperation();
        return module;
    }

    /// <summary>Whether unit N probed (its /dev node exists).</summary>
    public bool HasDmirror(int unit) => _testHmm.Device(unit) is not null;

    /// <summary>Start tracing (tracing_on): from now on every event at the kernel's tracepoints (page faults,
    /// migrate_vma_setup/collect/unmap/pages/finalize, hmm_range_fault, mmu notifier invalidations,
    /// migrate_to_ram, P2P alias decisions) is written to <paramref name="writer"/> as ftrace's text
    /// format, the file `trace-cmd report` prints and Perfetto opens; the header is written first.
    /// Replaces a previous writer. See docs/tracing.md for the events and their fields.</summary>
    public void StartTracing(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ObjectDisposedException.ThrowIf(_disposed, this);
        using (Operation())
            Kernel.Trace = new TraceBuffer(writer, Environment.ProcessorCount);
    }

    /// <summary>Stop tracing (tracing_off) and flush the writer; returns the number of events written
    /// since <see cref="StartTracing"/> (0 when tracing was off).</summary>
    public long StopTracing()
    {
        var t = Kernel.Trace;
        if (t is null)
            return 0;
        Kernel.Trace = null;
        t.Flush();
        return t.Entries;
    }

    /// <summary>The configuration this machine booted with.</summary>
    public MachineConfig Config { get; }
    internal KernelState Kernel { get; }
    internal long BootFreePages { get; }

    /// <summary>The boot-time checks, also used by the CLI to reject a bad machine before it boots.</summary>
    internal static void Validate(MachineConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var arch = Arch.For((K.Architecture)c.Architecture);
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
        ValidateVariants(c);
    }

    private static void ValidateVariants(MachineConfig c)
    {
        var v = c.Variants ?? throw new ArgumentException("Variants cannot be null", nameof(c));
        if (!Enum.IsDefined(v.SoftleafMigration) || !Enum.IsDefined(v.HmmPfnLayout) || !Enum.IsDefined(v.RmapMatch)
            || !Enum.IsDefined(v.PgmapPlacement) || !Enum.IsDefined(v.Zone) || !Enum.IsDefined(v.Identity)
            || !Enum.IsDefined(v.DevicePageMetadata))
            throw new ArgumentException($"Variants holds an undefined value: {v}", nameof(c));
        if (c.DevicePrivateDesign != DevicePrivateDesign.PhysicalAddressSpace)
            return;
        // Only the pgmap placement predates the redesign; every other switch is a choice inside it.
        var meaningless = new List<string>();
        if (v.SoftleafMigration != default) meaningless.Add(nameof(v.SoftleafMigration));
        if (v.HmmPfnLayout != default) meaningless.Add(nameof(v.HmmPfnLayout));
        if (v.RmapMatch != default) meaningless.Add(nameof(v.RmapMatch));
        if (v.Zone != default) meaningless.Add(nameof(v.Zone));
        if (v.Identity != default) meaningless.Add(nameof(v.Identity));
        if (v.DevicePageMetadata != default) meaningless.Add(nameof(v.DevicePageMetadata));
        if (meaningless.Count > 0)
            throw new ArgumentException($"Variants {string.Join(", ", meaningless)} have no meaning under DevicePrivateDesign.PhysicalAddressSpace (they change the device-private address space of the redesign)", nameof(c));
    }

    /// <summary>A new process with an empty address space (exec of an empty image); its pid is the next
    /// free one, starting at 1. Dispose the process to exit it.</summary>
    public Process CreateProcess()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Process p;
        using (Operation())
            p = Register(new MmStruct(Kernel));
        AfterOperation();
        return p;
    }

    /// <summary>An unlinked tmpfs file of <paramref name="size"/> bytes. ftruncate's errors surface as
    /// <see cref="ErrnoException"/>: EINVAL for a negative loff_t (above long.MaxValue), EFBIG past the
    /// model's s_maxbytes (<see cref="Shmem.MaxBytes"/>, smaller than tmpfs's MAX_LFS_FILESIZE).</summary>
    public ShmemFile CreateFile(ulong size)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var err = Shmem.CheckNewSize(size);
        if (err != K.Errno.None)
            throw new ErrnoException((Errno)err, $"ftruncate to {size} bytes");
        return new ShmemFile(this, size);
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
    internal bool IsDisposed => _disposed;

    /// <summary>The names <see cref="VmStat"/> has on every machine, for checking a name before a
    /// machine exists (a scenario file's expectations).</summary>
    internal static IReadOnlySet<string> VmStatNames { get; } = BuildVmStatNames();

    private static HashSet<string> BuildVmStatNames()
    {
        var names = new HashSet<string>(StringComparer.Ordinal)
        {
            "nr_free_pages", "nr_zone_device_pages", "hugetlb_pages_total", "hugetlb_pages_free", "struct_page_bytes_kernel",
            "struct_page_bytes_model", "page_data_bytes_model", "page_data_same_filled_pages_model", "struct_pages_initialised_model",
        };
        for (var i = (VmStatItem)0; i < VmStatItem.Count; i++)
            names.Add(K.VmStat.Name(i));
        return names;
    }

    /// <summary>/proc/vmstat: the kernel's counter names where Linux has them.</summary>
    public IReadOnlyDictionary<string, long> VmStat
    {
        get
        {
            var d = new SortedDictionary<string, long>(StringComparer.Ordinal);
            for (var i = (VmStatItem)0; i < VmStatItem.Count; i++)
                d[K.VmStat.Name(i)] = Kernel.VmStat[i];
            d["nr_free_pages"] = Kernel.Buddy.NrFreePages;
            d["nr_zone_device_pages"] = Kernel.VmStat[VmStatItem.NrZoneDevicePages];
            d["hugetlb_pages_total"] = Kernel.Hugetlb.Total;
            d["hugetlb_pages_free"] = Kernel.Hugetlb.Free;
            d["struct_page_bytes_kernel"] = Kernel.Memmap.KernelStructPageBytes;
            d["struct_page_bytes_model"] = Kernel.Memmap.ModelMemmapBytes;
            d["page_data_bytes_model"] = Kernel.Memmap.Data.BytesReserved;
            d["page_data_same_filled_pages_model"] = Kernel.Memmap.Data.SameFilledPages;
            long built = 0;
            foreach (var section in Kernel.Memmap.Sections())
                built += section.Pages.Length;
            d["struct_pages_initialised_model"] = built;
            return d;
        }
    }

    /// <summary>/proc/iomem.</summary>
    public string Iomem() => Kernel.Resources.ProcIomem();

    // What `hmmsim layout` needs from the kernel beyond the /proc text, in plain types (the CLI
    // sees only the contract): the top level of the resource tree with the descriptor the text
    // lacks, the device-private address space, and the architecture's physical address limit.

    /// <summary>The name /proc/iomem gives the PCI host bridge window.</summary>
    internal const string PciBusName = ResourceTree.PciBusName;

    /// <summary>/proc/iomem's top level: [Start, End) per region, and whether its descriptor is
    /// IORES_DESC_DEVICE_PRIVATE_MEMORY (not shown in the text).</summary>
    internal IReadOnlyList<(string? Name, ulong Start, ulong End, bool DevicePrivate)> IomemTopLevel() =>
        [.. Kernel.Resources.TopLevel.Select(r => (r.Name, r.Start, r.End + 1, r.Desc == IoResDesc.DevicePrivateMemory))];

    /// <summary>/proc/iomem's second level: each child [Start, End) of a top-level region (the BARs
    /// inside a PCI host bridge window), with the start of the region that holds it.</summary>
    internal IReadOnlyList<(ulong ParentStart, string? Name, ulong Start, ulong End)> IomemChildren() =>
        [.. Kernel.Resources.TopLevel.SelectMany(p => p.Children().Select(c => (p.Start, c.Name, c.Start, c.End + 1)))];

    /// <summary>The redesign's device-private address space as byte ranges [Start, End) named by
    /// their owner (the dmirror device, else the memory type); null in today's design.</summary>
    internal IReadOnlyList<(string Name, ulong Start, ulong End)>? DevicePrivateSpaceRanges() =>
        Kernel.DevicePrivateSpace is { } space
            ? [.. space.Snapshot().Select(p => ((p.Owner as DmirrorDevice)?.Name ?? p.Type.ToString(),
                p.First << Arch.PageShift, (p.First + p.NrPages) << Arch.PageShift))]
            : null;

    /// <summary>MAX_PHYSMEM_BITS of <paramref name="architecture"/>.</summary>
    internal static int MaxPhysmemBits(Architecture architecture) => Arch.For((K.Architecture)architecture).MaxPhysmemBits;

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

    /// <summary>After an operation that touched only [<paramref name="start"/>, +<paramref name="length"/>)
    /// of <paramref name="mm"/> (a CPU load or store): the local DEBUG_VM check of that range, so its cost
    /// follows the access, not the size of the machine. The full walk runs at teardown and on demand.</summary>
    internal void AfterOperation(K.MmStruct mm, ulong start, ulong length)
    {
        if (!Config.CheckInvariants)
            return;
        _opLock.EnterWriteLock();
        try
        {
            DebugVm.CheckRange(Kernel, mm, start, length);
            LocalInvariantChecks++;
        }
        finally
        {
            _opLock.ExitWriteLock();
        }
    }

    /// <summary>How many local (per-access) DEBUG_VM checks have run on this machine.</summary>
    internal long LocalInvariantChecks { get; private set; }

    internal Process Register(MmStruct mm)
    {
        lock (_procLock)
        {
            var p = new Process(this, _nextPid++, mm);
            mm.Pid = p.Pid;
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

    /// <summary>Run the teardown leak check at <see cref="Dispose"/> even with the per-operation checker
    /// off (the stress run, whose threads the per-operation checker would serialize).</summary>
    internal bool CheckTeardownAtDispose { get; set; }

    /// <summary>Exits every process; with the checker on, verifies that teardown returned every page.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        // The full walk at teardown: what the local per-access checks could not see is found here.
        if (Config.CheckInvariants)
            CheckInvariants();
        Process[] procs;
        lock (_procLock)
            procs = [.. _processes.Values];
        foreach (var p in procs)
            p.Dispose();
        using (Operation())
        {
            _testHmm.HmmDmirrorExit();   // rmmod test_hmm
        }
        _disposed = true;
        Kernel.ReleaseCensus();
        if (Config.CheckInvariants || CheckTeardownAtDispose)
            DebugVm.CheckTeardown(Kernel, BootFreePages);
    }
}
