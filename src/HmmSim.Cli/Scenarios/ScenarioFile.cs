using System.Globalization;
using System.Text.Json;
using HmmSim.Cli.Explore;
using Arch = HmmSim.Kernel.Arch;

namespace HmmSim.Cli.Scenarios;

/// <summary>Reads and checks a scenario file (docs/scenarios.md). Everything that can be known before
/// the run is checked here: JSON syntax, operations and their fields, numbers, names, units, and that
/// addresses are page-aligned and inside the mapping they name. Any problem is one
/// <see cref="ScenarioFileException"/> naming the file, line, column and what is wrong.</summary>
internal sealed class ScenarioFile
{
    private const ulong PageSize = Arch.PageSize;
    private const int DmirrorUnits = 4;

    private static readonly string[] _commonFields = ["op", "process", "expect", "expectByDesign", "designs", "comment"];

    /// <summary>Reads one operation's own fields from its step object.</summary>
    private delegate ScenarioOp OpParser(ScenarioFile file, JNode step, string index, string what);

    /// <summary>An operation's fields (beyond the common ones) and how to read them.</summary>
    private sealed record OpSyntax(string[] Fields, OpParser Parse);

    /// <summary>The one place an "op" name becomes an operation record.</summary>
    private static readonly Dictionary<string, OpSyntax> _ops = new(StringComparer.Ordinal)
    {
        ["mmap"] = new(["name", "at", "length", "prot", "flags", "file", "offset", "align"], (f, s, _, what) => f.Mmap(s, what)),
        ["munmap"] = new(["at", "length"], (f, s, _, what) => new MunmapOp(f.Addr(s, what, aligned: true, out var len), f.LengthOf(s, len, what))),
        ["mprotect"] = new(["at", "length", "prot"], (f, s, _, what) =>
            new MprotectOp(f.Addr(s, what, aligned: true, out var len), f.LengthOf(s, len, what), f.Flags<Prot>(f.Required(s, "prot", what), "prot"))),
        ["madvise"] = new(["at", "length", "advice"], (f, s, _, what) =>
            new MadviseOp(f.Addr(s, what, aligned: true, out var len), f.LengthOf(s, len, what), f.Enum<Advice>(f.Required(s, "advice", what), "advice"))),
        ["mremap"] = new(["at", "oldLength", "newLength", "flags", "newAt", "name"], (f, s, _, what) => f.Mremap(s, what)),
        ["fork"] = new(["child"], (f, s, _, what) => f.Fork(s, what)),
        ["exit"] = new([], (_, _, _, _) => new ExitOp()),
        ["read"] = new(["at", "length", "into"], (f, s, _, what) => f.Read(s, what)),
        ["write"] = new(["at", "bytes", "int", "ints", "buffer"], (f, s, _, what) => f.Write(s, what)),
        ["fill"] = new(["at", "buffer", "offset", "length", "pattern", "value", "start", "seed"], (f, s, _, what) => f.FillOrVerify(s, what, fill: true)),
        ["verify"] = new(["at", "buffer", "offset", "length", "pattern", "value", "start", "seed"], (f, s, _, what) => f.FillOrVerify(s, what, fill: false)),
        ["dmirror.open"] = new(["unit", "handle"], (f, s, _, what) => f.Open(s, what)),
        ["dmirror.close"] = new(["handle"], (f, s, _, what) => new DmirrorCloseOp(f.Handle(s, what))),
        ["dmirror.release"] = new(["handle"], (f, s, _, what) => new DmirrorReleaseOp(f.Handle(s, what))),
        ["dmirror.flags"] = new(["handle", "flags"], (f, s, _, what) =>
            new DmirrorFlagsOp(f.Handle(s, what), f.Flags<DmirrorFlags>(f.Required(s, "flags", what), "flags"))),
        ["dmirror.read"] = DmirrorRangeSyntax(DmirrorIoctl.Read),
        ["dmirror.write"] = DmirrorRangeSyntax(DmirrorIoctl.Write),
        ["dmirror.migrate_to_dev"] = DmirrorRangeSyntax(DmirrorIoctl.MigrateToDev),
        ["dmirror.migrate_to_sys"] = DmirrorRangeSyntax(DmirrorIoctl.MigrateToSys),
        ["dmirror.snapshot"] = DmirrorRangeSyntax(DmirrorIoctl.Snapshot),
        ["dmirror.exclusive"] = DmirrorRangeSyntax(DmirrorIoctl.Exclusive),
        ["dmirror.check_exclusive"] = DmirrorRangeSyntax(DmirrorIoctl.CheckExclusive),
        ["dump"] = new(["at", "length"], (f, s, _, what) => f.Dump(s, what)),
        ["repeat"] = new(["count", "steps"], (f, s, index, what) => f.Repeat(s, index, what)),
    };

    private readonly string _file;
    private readonly Dictionary<string, ulong?> _mappings = new(StringComparer.Ordinal);
    private readonly HashSet<string> _processes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _files = new(StringComparer.Ordinal);
    private readonly HashSet<string> _handles = new(StringComparer.Ordinal);
    private readonly HashSet<string> _buffers = new(StringComparer.Ordinal);
    private ScenarioMachine _machine = new();
    private string _defaultProcess = "main";

    private ScenarioFile(string file) => _file = file;

    /// <summary>The operation names a step may have.</summary>
    public static IReadOnlyCollection<string> Operations => _ops.Keys;

    public static Scenario Load(string path)
    {
        if (Directory.Exists(path))
            throw new ScenarioFileException(path, 0, 0, "is a directory; give a scenario JSON file");
        byte[] bytes;
        try
        {
            bytes = ReadBounded(path, MaxFileBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ScenarioFileException(path, 0, 0, e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : $"cannot read the file: {e.Message}");
        }
        return Parse(bytes, path);
    }

    /// <summary>The largest scenario file read: a bound, so /dev/zero or a FIFO cannot exhaust memory.</summary>
    public const int MaxFileBytes = 128 << 20;

    /// <summary>Reads at most <paramref name="limit"/> bytes; a longer (or endless) file is one error.</summary>
    private static byte[] ReadBounded(string path, int limit)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int n;
        while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + n > limit)
                throw new ScenarioFileException(path, 0, 0, $"larger than {limit >> 20} MiB (or endless, like a device file): a scenario is a JSON file");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    public static Scenario Parse(byte[] utf8, string file) => new ScenarioFile(file).ParseRoot(JNode.Parse(utf8, file));

    private ScenarioFileException Error(JNode at, string problem) => new(_file, at.Line, at.Column, problem);

    private Scenario ParseRoot(JNode root)
    {
        if (root.Kind != JsonValueKind.Object)
            throw Error(root, $"a scenario is a JSON object, not {root.KindName}");
        CheckFields(root, "the scenario", ["name", "description", "machine", "processes", "files", "steps"]);
        string name = root["name"] is { } n ? String(n, "name") : Path.GetFileNameWithoutExtension(_file);
        string? description = root["description"] is { } d ? String(d, "description") : null;
        if (root["machine"] is { } m)
            _machine = ParseMachine(m);

        var processes = new List<string>();
        if (root["processes"] is { } ps)
        {
            foreach (var p in Array(ps, "processes"))
            {
                string pn = Identifier(p, "a process name");
                if (!_processes.Add(pn))
                    throw Error(p, $"process \"{pn}\" is named twice");
                processes.Add(pn);
            }
            if (processes.Count == 0)
                throw Error(ps, "processes: name at least one process");
        }
        else
        {
            processes.Add("main");
            _processes.Add("main");
        }
        _defaultProcess = processes[0];

        var files = new List<KeyValuePair<string, ulong>>();
        if (root["files"] is { } fs)
        {
            foreach (var f in Array(fs, "files"))
            {
                if (f.Kind != JsonValueKind.Object)
                    throw Error(f, $"a file is an object {{\"name\": ..., \"size\": ...}}, not {f.KindName}");
                CheckFields(f, "a file", ["name", "size"]);
                string fn = Identifier(Required(f, "name", "a file"), "a file name");
                if (!_files.Add(fn))
                    throw Error(f, $"file \"{fn}\" is named twice");
                files.Add(new(fn, Number(Required(f, "size", "a file"), "size")));
            }
        }

        var stepsNode = root["steps"] ?? throw Error(root, "missing field \"steps\": a scenario needs a list of steps");
        var steps = ParseSteps(stepsNode, "");
        return new Scenario(_file, name, description, _machine, processes, files, steps);
    }

    private ScenarioMachine ParseMachine(JNode m)
    {
        if (m.Kind != JsonValueKind.Object)
            throw Error(m, $"machine must be an object, not {m.KindName}");
        CheckFields(m, "machine", ["architecture", "physicalAddressBits", "ramBytes", "pciWindows", "pciTopology", "designs", "thp", "hugetlbPages", "seed", "checkInvariants", "variants"]);
        var mc = new ScenarioMachine();
        if (m["architecture"] is { } a)
            mc = mc with { Architecture = Enum<Architecture>(a, "architecture") };
        if (m["physicalAddressBits"] is { } b)
        {
            ulong bits = Number(b, "physicalAddressBits");
            if (bits is < 32 or > 52)
                throw Error(b, $"physicalAddressBits must be 32..52, not {bits}");
            mc = mc with { PhysicalAddressBits = (int)bits };
        }
        if (m["ramBytes"] is { } r)
        {
            ulong ram = Number(r, "ramBytes");
            if (ram < 64UL << 20 || ram % (4UL << 20) != 0)
                throw Error(r, $"ramBytes must be a multiple of 4 MiB and at least 64 MiB (the Machine's rule), not {ram}");
            if (ram > 1UL << mc.PhysicalAddressBits)
                throw Error(r, $"ramBytes (0x{ram:x}) does not fit in {mc.PhysicalAddressBits}-bit physical addresses");
            mc = mc with { RamBytes = ram };
        }
        if (m["pciWindows"] is { } w)
        {
            var windows = new List<PhysicalRange>();
            foreach (var x in Array(w, "pciWindows"))
            {
                if (x.Kind != JsonValueKind.Object)
                    throw Error(x, $"a PCI window is an object {{\"start\": ..., \"length\": ...}}, not {x.KindName}");
                CheckFields(x, "a PCI window", ["start", "length"]);
                ulong start = Number(Required(x, "start", "a PCI window"), "start");
                ulong length = Number(Required(x, "length", "a PCI window"), "length");
                if (length == 0 || start % PageSize != 0 || length % PageSize != 0)
                    throw Error(x, "a PCI window's start and length must be page-aligned and its length non-zero");
                if (start + length > 1UL << mc.PhysicalAddressBits || start + length < start)
                    throw Error(x, $"PCI window [0x{start:x}, 0x{start + length:x}) is out of range: the physical address space ends at 2^{mc.PhysicalAddressBits} = 0x{1UL << mc.PhysicalAddressBits:x}");
                if (start < mc.RamBytes)
                    throw Error(x, $"PCI window at 0x{start:x} overlaps RAM [0, 0x{mc.RamBytes:x})");
                windows.Add(new PhysicalRange(start, length));
            }
            mc = mc with { PciWindows = windows };
        }
        if (m["pciTopology"] is { } t)
            mc = mc with { PciTopology = Enum<PciTopology>(t, "pciTopology") };
        if (m["designs"] is { } ds)
            mc = mc with { Designs = Designs(ds, "designs") };
        if (m["thp"] is { } thp)
            mc = mc with { Thp = Enum<ThpPolicy>(thp, "thp") };
        if (m["hugetlbPages"] is { } h)
        {
            ulong pages = Number(h, "hugetlbPages");
            if (pages > 1 << 20 || pages * (2UL << 20) > mc.RamBytes / 2)
                throw Error(h, $"hugetlbPages {pages} (2 MiB each) do not fit in half of RAM");
            mc = mc with { HugetlbPages = (int)pages };
        }
        if (m["seed"] is { } s)
            mc = mc with { Seed = Number(s, "seed") };
        if (m["checkInvariants"] is { } c)
            mc = mc with { CheckInvariants = Bool(c, "checkInvariants") };
        if (m["variants"] is { } v)
            mc = mc with { Variants = ParseVariants(v) };
        // The library's own boot checks, at the file check, pointing at the field they name.
        foreach (var design in mc.Designs)
        {
            if (MachineOverrides.Check(mc.ToConfig(design)) is { } problem)
            {
                var at = problem.StartsWith("PhysicalAddressBits", StringComparison.Ordinal) ? m["physicalAddressBits"] ?? m["architecture"]
                    : problem.StartsWith("RamBytes", StringComparison.Ordinal) ? m["ramBytes"]
                    : problem.StartsWith("HugetlbPages", StringComparison.Ordinal) ? m["hugetlbPages"] : null;
                throw Error(at ?? m, $"machine: {problem}");
            }
        }
        return mc;
    }

    /// <summary>`variants`: {"RmapMatch": "PfnOnly", ...}, each field a <see cref="DesignVariants"/> switch.</summary>
    private DesignVariants ParseVariants(JNode node)
    {
        if (node.Kind != JsonValueKind.Object)
            throw Error(node, $"variants must be an object such as {{\"RmapMatch\": \"PfnOnly\"}}, not {node.KindName}");
        var variants = new DesignVariants();
        foreach (var (name, value) in node.Properties)
        {
            string text = String(value, name);
            if (!VariantSwitches.TrySet(variants, name, text, out variants, out string? why))
                throw Error(value, why!);
        }
        return variants;
    }

    private List<DevicePrivateDesign> Designs(JNode node, string field)
    {
        var list = new List<DevicePrivateDesign>();
        if (node.Kind == JsonValueKind.String)
            list.Add(Enum<DevicePrivateDesign>(node, field));
        else
            foreach (var x in Array(node, field))
                list.Add(Enum<DevicePrivateDesign>(x, field));
        if (list.Count == 0)
            throw Error(node, $"{field}: name at least one design (PhysicalAddressSpace, DeviceAddressSpace)");
        return list.Distinct().ToList();
    }

    private List<ScenarioStep> ParseSteps(JNode node, string prefix)
    {
        var steps = new List<ScenarioStep>();
        int i = 0;
        foreach (var s in Array(node, "steps"))
            steps.Add(ParseStep(s, prefix + (++i).ToString(CultureInfo.InvariantCulture)));
        return steps;
    }

    private ScenarioStep ParseStep(JNode s, string index)
    {
        if (s.Kind != JsonValueKind.Object)
            throw Error(s, $"step {index} must be an object with an \"op\", not {s.KindName}");
        var opNode = s["op"] ?? throw Error(s, $"step {index}: missing field \"op\"");
        string opName = String(opNode, "op");
        if (!_ops.TryGetValue(opName, out var syntax))
            throw Error(opNode, $"step {index}: unknown operation \"{opName}\"; known: {string.Join(", ", _ops.Keys)}");
        CheckFields(s, $"step {index} ({opName})", [.. _commonFields, .. syntax.Fields]);
        string what = $"step {index} ({opName})";

        string process = _defaultProcess;
        if (s["process"] is { } pn)
        {
            process = String(pn, "process");
            if (!_processes.Contains(process))
                throw Error(pn, $"{what}: unknown process \"{process}\"; known: {string.Join(", ", _processes)}");
        }
        var designs = s["designs"] is { } dsn ? Designs(dsn, "designs") : null;
        var op = syntax.Parse(this, s, index, what);
        var step = new ScenarioStep { Operation = op, Index = index, Line = s.Line, Column = s.Column, Process = process, Designs = designs };

        var expectations = new Dictionary<DevicePrivateDesign, StepExpectation>();
        if (s["expect"] is { } e)
            step = step with { Expect = Expectation(e, op, what) };
        if (s["expectByDesign"] is { } ebd)
        {
            if (ebd.Kind != JsonValueKind.Object)
                throw Error(ebd, $"{what}: expectByDesign is an object {{\"PhysicalAddressSpace\": {{...}}, \"DeviceAddressSpace\": {{...}}}}");
            foreach (var (k, v) in ebd.Properties)
            {
                if (!System.Enum.TryParse<DevicePrivateDesign>(k, ignoreCase: true, out var design) || !System.Enum.IsDefined(design))
                {
                    var (l, c) = ebd.NamePositions[k];
                    throw new ScenarioFileException(_file, l, c, $"{what}: expectByDesign: unknown design \"{k}\"; known: PhysicalAddressSpace, DeviceAddressSpace");
                }
                expectations[design] = Expectation(v, op, what);
            }
            step = step with { ExpectByDesign = expectations };
        }
        return step;
    }

    private MmapOp Mmap(JNode s, string what)
    {
        ulong length = Number(Required(s, "length", what), "length");
        if (length == 0)
            throw Error(s["length"]!, $"{what}: length must be non-zero");
        AddressExpr? at = null;
        if (s["at"] is { } a)
            at = CheckedAddress(a, what, aligned: true, 0, insideMapping: false);
        string? file = null;
        if (s["file"] is { } f)
        {
            file = String(f, "file");
            if (!_files.Contains(file))
                throw Error(f, $"{what}: unknown file \"{file}\"; declare it in \"files\"");
        }
        ulong offset = s["offset"] is { } o ? Number(o, "offset") : 0;
        if (offset % PageSize != 0)
            throw Error(s["offset"]!, $"{what}: offset 0x{offset:x} is not page-aligned");
        ulong align = s["align"] is { } al ? Number(al, "align") : 0;
        if (align != 0 && (align % PageSize != 0 || (align & (align - 1)) != 0))
            throw Error(s["align"]!, $"{what}: align must be a power of two multiple of 4096, not 0x{align:x}");
        var flags = s["flags"] is { } fl ? Flags<MapFlags>(fl, "flags") : MapFlags.Private | MapFlags.Anonymous;
        if (file is not null && flags.HasFlag(MapFlags.Anonymous))
            throw Error(s["flags"] ?? s, $"{what}: a file mapping must not have the Anonymous flag");
        if (file is null && !flags.HasFlag(MapFlags.Anonymous) && !flags.HasFlag(MapFlags.Hugetlb))
            throw Error(s["flags"] ?? s, $"{what}: a mapping without \"file\" needs the Anonymous flag");
        string? name = null;
        if (s["name"] is { } n)
        {
            name = Identifier(n, "a mapping name");
            _mappings[name] = length;
        }
        var prot = s["prot"] is { } p ? Flags<Prot>(p, "prot") : Prot.Read | Prot.Write;
        return new MmapOp(name, at, length, prot, flags, file, offset, align);
    }

    private MremapOp Mremap(JNode s, string what)
    {
        var at = Addr(s, what, aligned: true, out var len);
        ulong oldLength = len ?? Number(Required(s, "oldLength", what), "oldLength");
        if (s["oldLength"] is { } ol)
            oldLength = Number(ol, "oldLength");
        ulong newLength = Number(Required(s, "newLength", what), "newLength");
        AddressExpr? newAt = s["newAt"] is { } na ? CheckedAddress(na, what, aligned: true, newLength, insideMapping: false) : null;
        string? name = s["name"] is { } n ? Identifier(n, "a mapping name") : at.IsBareName ? at.Name : null;
        if (name is not null)
            _mappings[name] = newLength;
        var flags = s["flags"] is { } f ? Flags<MremapFlags>(f, "flags") : MremapFlags.MayMove;
        return new MremapOp(at, oldLength, newLength, flags, newAt, name);
    }

    private ForkOp Fork(JNode s, string what)
    {
        var c = Required(s, "child", what);
        string child = Identifier(c, "a process name");
        if (!_processes.Add(child))
            throw Error(c, $"{what}: process \"{child}\" already exists");
        return new ForkOp(child);
    }

    private ReadOp Read(JNode s, string what)
    {
        var at = Addr(s, what, aligned: false, out var len);
        ulong length = len ?? Number(Required(s, "length", what), "length");
        if (s["length"] is { } l)
            length = Number(l, "length");
        CheckRange(s["at"]!, at, length, what);
        CheckBufferSize(s["length"] ?? s, length, what);
        var into = Identifier(Required(s, "into", what), "a buffer name");
        _buffers.Add(into);
        return new ReadOp(at, length, into);
    }

    private WriteOp Write(JNode s, string what)
    {
        var at = Addr(s, what, aligned: false, out _);
        string[] sources = ["bytes", "int", "ints", "buffer"];
        var given = sources.Where(x => s[x] is not null).ToList();
        if (given.Count != 1)
            throw Error(s, $"{what}: give exactly one of \"bytes\", \"int\", \"ints\" or \"buffer\" to write");
        var node = s[given[0]]!;
        byte[]? bytes = null;
        string? buffer = null;
        switch (given[0])
        {
            case "bytes":
                bytes = node.Kind == JsonValueKind.String ? Hex(node) : Array(node, "bytes").Select(b => Byte(b, "bytes")).ToArray();
                break;
            case "int":
                bytes = BitConverter.GetBytes(Int32(node, "int"));
                break;
            case "ints":
                bytes = Array(node, "ints").SelectMany(x => BitConverter.GetBytes(Int32(x, "ints"))).ToArray();
                break;
            default:
                buffer = KnownBuffer(node, what);
                break;
        }
        if (bytes is { Length: 0 })
            throw Error(node, $"{what}: nothing to write");
        if (bytes is not null)
            CheckRange(s["at"]!, at, (ulong)bytes.Length, what);
        return new WriteOp(at, bytes, buffer);
    }

    private PatternOp FillOrVerify(JNode s, string what, bool fill)
    {
        bool hasAt = s["at"] is not null, hasBuffer = s["buffer"] is not null;
        if (hasAt == hasBuffer)
            throw Error(s, $"{what}: give exactly one of \"at\" (process memory) or \"buffer\" (a named buffer)");
        var kindNode = Required(s, "pattern", what);
        var kind = String(kindNode, "pattern") switch
        {
            "index" => PatternKind.Index,
            "constant" => PatternKind.Constant,
            "seeded-random" => PatternKind.SeededRandom,
            var k => throw Error(kindNode, $"{what}: unknown pattern \"{k}\"; known: index, constant, seeded-random"),
        };
        if (kind == PatternKind.Constant && s["value"] is null)
            throw Error(s, $"{what}: the constant pattern needs a \"value\"");
        if (kind != PatternKind.Constant && s["value"] is { } v0)
            throw Error(v0, $"{what}: \"value\" belongs to the constant pattern only");
        if (kind != PatternKind.Index && s["start"] is { } st0)
            throw Error(st0, $"{what}: \"start\" belongs to the index pattern only");
        if (kind != PatternKind.SeededRandom && s["seed"] is { } sd0)
            throw Error(sd0, $"{what}: \"seed\" belongs to the seeded-random pattern only");
        var pattern = new FillPattern(kind,
            s["value"] is { } v ? Int32(v, "value") : 0,
            s["start"] is { } st ? Int32(st, "start") : 0,
            s["seed"] is { } sd ? Int32(sd, "seed") : 0);
        ulong? length = s["length"] is { } l ? Number(l, "length") : null;
        AddressExpr? at = null;
        string? buffer = null;
        ulong offset = 0;
        if (hasAt)
        {
            if (s["offset"] is { } o)
                throw Error(o, $"{what}: \"offset\" is for buffers; write \"at\": \"name+offset\" for memory");
            at = Addr(s, what, aligned: false, out var len);
            length ??= len ?? throw Error(s, $"{what}: missing field \"length\"");
            CheckRange(s["at"]!, at.Value, length.Value, what);
        }
        else
        {
            buffer = Identifier(s["buffer"]!, "a buffer name");
            if (fill)
                _buffers.Add(buffer);
            else
                KnownBuffer(s["buffer"]!, what);
            offset = s["offset"] is { } o ? Number(o, "offset") : 0;
            length ??= fill ? throw Error(s, $"{what}: missing field \"length\"") : null;
        }
        if (length is 0)
            throw Error(s["length"]!, $"{what}: length must be non-zero");
        if (length is { } n)
            CheckBufferSize(s["length"] ?? s, n, what);
        if (kind != PatternKind.SeededRandom && length is { } len4 && len4 % 4 != 0)
            throw Error(s["length"]!, $"{what}: the {kind.ToString().ToLowerInvariant()} pattern is of 32-bit ints: length {len4} is not a multiple of 4");
        return fill ? new FillOp(at, buffer, offset, length, pattern) : new VerifyOp(at, buffer, offset, length, pattern);
    }

    private DmirrorOpenOp Open(JNode s, string what)
    {
        var u = Required(s, "unit", what);
        ulong unit = Number(u, "unit");
        if (unit >= DmirrorUnits)
            throw Error(u, $"{what}: unknown unit {unit}: the machine has /dev/hmm_dmirror0..3 (0, 1 device-private; 2, 3 device-coherent)");
        var h = Required(s, "handle", what);
        string handle = Identifier(h, "a handle name");
        _handles.Add(handle);
        return new DmirrorOpenOp((int)unit, handle);
    }

    private static OpSyntax DmirrorRangeSyntax(DmirrorIoctl ioctl) =>
        new(ioctl is DmirrorIoctl.MigrateToSys or DmirrorIoctl.CheckExclusive ? ["handle", "at", "pages"] : ["handle", "at", "pages", "buffer"],
            (f, s, _, what) => f.DmirrorRange(s, what, ioctl));

    private DmirrorRangeOp DmirrorRange(JNode s, string what, DmirrorIoctl ioctl)
    {
        string handle = Handle(s, what);
        var at = Addr(s, what, aligned: true, out var len);
        ulong pages;
        if (s["pages"] is { } p)
            pages = Number(p, "pages");
        else if (len is { } l)
            pages = (l + PageSize - 1) / PageSize;
        else
            throw Error(s, $"{what}: missing field \"pages\"");
        if (pages == 0)
            throw Error(s["pages"] ?? s, $"{what}: pages must be non-zero");
        CheckRange(s["at"]!, at, pages * PageSize, what);
        CheckBufferSize(s["pages"] ?? s, pages * PageSize, what);
        string? buffer = null;
        if (ioctl is not (DmirrorIoctl.MigrateToSys or DmirrorIoctl.CheckExclusive))
        {
            if (s["buffer"] is { } b)
            {
                buffer = Identifier(b, "a buffer name");
                if (ioctl == DmirrorIoctl.Write)
                    KnownBuffer(b, what);
            }
            else
            {
                buffer = handle + ".mirror";
                if (ioctl == DmirrorIoctl.Write && !_buffers.Contains(buffer))
                    throw Error(s, $"{what}: the device writes from a buffer: name one with \"buffer\" (fill it first)");
            }
            _buffers.Add(buffer);
        }
        return new DmirrorRangeOp(ioctl, handle, at, pages, buffer);
    }

    private DumpOp Dump(JNode s, string what)
    {
        var at = Addr(s, what, aligned: true, out var len);
        ulong length = LengthOf(s, len, what);
        if (length == 0)
            throw Error(s["length"] ?? s, $"{what}: length must be non-zero");
        if ((length + PageSize - 1) / PageSize > DumpOp.MaxPages)
            throw Error(s["length"] ?? s, $"{what}: a dump prints one line per page: at most {DumpOp.MaxPages} pages ({DumpOp.MaxPages * PageSize >> 20} MiB), not 0x{length:x} bytes");
        CheckRange(s["at"]!, at, length, what);
        return new DumpOp(at, length);
    }

    private RepeatOp Repeat(JNode s, string index, string what)
    {
        var c = Required(s, "count", what);
        ulong count = Number(c, "count");
        if (count is 0 or > 1_000_000)
            throw Error(c, $"{what}: count must be 1..1000000, not {count}");
        var steps = ParseSteps(Required(s, "steps", what), index + ".");
        if (steps.Count == 0)
            throw Error(s["steps"]!, $"{what}: steps is empty");
        return new RepeatOp((int)count, steps);
    }

    private StepExpectation Expectation(JNode e, ScenarioOp op, string what)
    {
        if (e.Kind != JsonValueKind.Object)
            throw Error(e, $"{what}: expect must be an object, not {e.KindName}");
        CheckFields(e, $"{what}: expect", ["errno", "cpages", "faults", "snapshot", "segv", "stop", "pagemap", "vmstat"]);
        bool isDmirrorRange = op is DmirrorRangeOp;
        bool isCpu = op is CpuAccessOp;
        var x = new StepExpectation();
        if (e["errno"] is { } en)
        {
            if (isCpu || op is ForkOp or ExitOp or RepeatOp or DmirrorCloseOp)
                throw Error(en, $"{what}: {op.Name} returns no errno to expect");
            x = x with { Errno = ErrnoValue(en) };
        }
        if (e["cpages"] is { } cp)
        {
            if (!isDmirrorRange)
                throw Error(cp, $"{what}: expect.cpages applies only to dmirror commands over a range");
            x = x with { CPages = Number(cp, "cpages") };
        }
        if (e["faults"] is { } fa)
        {
            if (!isDmirrorRange)
                throw Error(fa, $"{what}: expect.faults applies only to dmirror commands over a range");
            x = x with { Faults = Number(fa, "faults") };
        }
        if (e["snapshot"] is { } sn)
        {
            if (op is not DmirrorRangeOp { Ioctl: DmirrorIoctl.Snapshot })
                throw Error(sn, $"{what}: expect.snapshot applies only to dmirror.snapshot");
            x = x with { Snapshot = Array(sn, "snapshot").Select(SnapshotByte).ToList() };
        }
        if (e["segv"] is { } sg)
        {
            if (!isCpu)
                throw Error(sg, $"{what}: expect.segv applies only to CPU accesses (read, write, fill, verify)");
            x = x with { Segv = Bool(sg, "segv") };
        }
        if (e["stop"] is { } stp)
            x = x with { Stop = Bool(stp, "stop") };
        if (e["pagemap"] is { } pm)
        {
            if (ScenarioRunner.CoveredRange(op) is null)
                throw Error(pm, $"{what}: expect.pagemap applies only to steps with an \"at\" (it checks the pages the step covers)");
            x = x with { Pagemap = PagemapExpect(pm, what) };
        }
        if (e["vmstat"] is { } vm)
        {
            if (op is RepeatOp)
                throw Error(vm, $"{what}: expect.vmstat applies to one operation; put it on a step inside the repeat");
            x = x with { VmStat = VmStatExpect(vm, what) };
        }
        return x;
    }

    /// <summary>expect.pagemap: {"present": true, "swapped": false, "pfn": "nonzero", ...}.</summary>
    private PagemapExpectation PagemapExpect(JNode pm, string what)
    {
        if (pm.Kind != JsonValueKind.Object)
            throw Error(pm, $"{what}: expect.pagemap is an object such as {{\"present\": true, \"pfn\": \"nonzero\"}}, not {pm.KindName}");
        CheckFields(pm, $"{what}: expect.pagemap", ["present", "swapped", "pfn", "softDirty", "exclusive", "file", "uffdWp", "swapType"]);
        var x = new PagemapExpectation();
        if (pm["present"] is { } p)
            x = x with { Present = Bool(p, "pagemap.present") };
        if (pm["swapped"] is { } sw)
            x = x with { Swapped = Bool(sw, "pagemap.swapped") };
        if (pm["softDirty"] is { } sd)
            x = x with { SoftDirty = Bool(sd, "pagemap.softDirty") };
        if (pm["exclusive"] is { } ex)
            x = x with { Exclusive = Bool(ex, "pagemap.exclusive") };
        if (pm["file"] is { } fi)
            x = x with { FileOrShared = Bool(fi, "pagemap.file") };
        if (pm["uffdWp"] is { } uw)
            x = x with { UffdWp = Bool(uw, "pagemap.uffdWp") };
        if (pm["swapType"] is { } st)
        {
            ulong type = Number(st, "pagemap.swapType");
            if (type > 31)
                throw Error(st, $"{what}: pagemap.swapType is 0..31 (five bits), not {type}");
            x = x with { SwapType = (uint)type };
        }
        if (pm["pfn"] is { } pfn)
        {
            if (pfn.Kind == JsonValueKind.String && string.Equals(pfn.Text, "nonzero", StringComparison.OrdinalIgnoreCase))
                x = x with { Pfn = PagemapExpectation.NonZero };
            else if (pfn.Kind == JsonValueKind.String && !char.IsAsciiDigit(pfn.Text!.FirstOrDefault()))
                throw Error(pfn, $"{what}: pagemap.pfn is \"nonzero\" or a number, not \"{pfn.Text}\"");
            else
                x = x with { Pfn = Number(pfn, "pagemap.pfn") };
        }
        return x;
    }

    /// <summary>expect.vmstat: {"device_migrate_to_ram": 4}, each a counter's change over the step.</summary>
    private Dictionary<string, long> VmStatExpect(JNode vm, string what)
    {
        if (vm.Kind != JsonValueKind.Object)
            throw Error(vm, $"{what}: expect.vmstat is an object such as {{\"device_migrate_to_ram\": 4}}, not {vm.KindName}");
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, value) in vm.Properties)
        {
            if (!Machine.VmStatNames.Contains(name))
            {
                var (l, c) = vm.NamePositions[name];
                var near = Machine.VmStatNames.Where(n => n.Contains(name, StringComparison.OrdinalIgnoreCase) || name.Contains(n, StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal).Take(5).ToList();
                throw new ScenarioFileException(_file, l, c, $"{what}: expect.vmstat: unknown counter \"{name}\"" +
                    (near.Count > 0 ? $"; did you mean {string.Join(", ", near)}?" : $"; known: {string.Join(", ", Machine.VmStatNames.Order(StringComparer.Ordinal))}"));
            }
            if (counters.ContainsKey(name))
            {
                var (l, c) = vm.NamePositions[name];
                throw new ScenarioFileException(_file, l, c, $"{what}: expect.vmstat: counter \"{name}\" is given twice");
            }
            counters[name] = SignedInt64(value, $"vmstat.{name}");
        }
        if (counters.Count == 0)
            throw Error(vm, $"{what}: expect.vmstat names no counter");
        return counters;
    }

    /// <summary>A counter's change: a JSON integer, possibly negative (a counter such as nr_free_pages falls).</summary>
    private long SignedInt64(JNode node, string field)
    {
        if (node.Kind == JsonValueKind.Number && long.TryParse(node.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
            return v;
        ulong u = Number(node, field);
        if (u > long.MaxValue)
            throw Error(node, $"bad number for {field}: {u} is out of range");
        return (long)u;
    }

    private byte SnapshotByte(JNode n)
    {
        if (n.Kind == JsonValueKind.Number)
            return Byte(n, "snapshot");
        if (n.Kind == JsonValueKind.String && n.Text!.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return Byte(n, "snapshot");
        return (byte)Flags<DmirrorProt>(n, "snapshot");
    }

    private Errno ErrnoValue(JNode n)
    {
        if (n.Kind == JsonValueKind.Number)
        {
            ulong v = Number(n, "errno");
            if (v > 4095 || !System.Enum.IsDefined((Errno)(int)v))
                throw Error(n, $"errno {v} is not one the model knows");
            return (Errno)(int)v;
        }
        return Enum<Errno>(n, "errno");
    }

    // ---- addresses ----

    /// <summary>The step's "at": checked for alignment and (when the mapping's length is known) that
    /// it lies inside the named mapping. <paramref name="mappingLength"/> is the rest of the mapping
    /// when "at" is a bare name, the default length of the operation.</summary>
    private AddressExpr Addr(JNode s, string what, bool aligned, out ulong? mappingLength)
    {
        var node = Required(s, "at", what);
        var at = CheckedAddress(node, what, aligned, 0);
        mappingLength = at.IsBareName ? _mappings[at.Name!] : null;
        if (s["length"] is { } ln && aligned && at.Name is not null)
            CheckRange(node, at, Number(ln, "length"), what);
        return at;
    }

    /// <summary>The step's "length", or when it has none and "at" is a bare mapping name, the mapping's length.</summary>
    private ulong LengthOf(JNode s, ulong? mappingLength, string what) =>
        s["length"] is { } l ? Number(l, "length") : mappingLength ?? Number(Required(s, "length", what), "length");

    private AddressExpr CheckedAddress(JNode node, string what, bool aligned, ulong length, bool insideMapping = true)
    {
        var at = AddressExpression(node);
        if (at.Name is not null && !_mappings.ContainsKey(at.Name))
            throw Error(node, $"{what}: unknown name \"{at.Name}\": no earlier mmap step is named so" + (_mappings.Count > 0 ? $" (known: {string.Join(", ", _mappings.Keys)})" : ""));
        if (aligned && at.Offset % (long)PageSize != 0)
            throw Error(node, $"{what}: address {at} is not page-aligned (4096)");
        if (insideMapping || at.Name is null)
            CheckRange(node, at, length, what);
        return at;
    }

    private void CheckRange(JNode node, AddressExpr at, ulong length, string what)
    {
        if (at.Name is null)
        {
            ulong a = (ulong)at.Offset;
            if (at.Offset < 0 || a >= _machine.TaskSize || length > _machine.TaskSize - a)
                throw Error(node, $"{what}: address range [0x{a:x}, +0x{length:x}) is out of range: user addresses end at 0x{_machine.TaskSize:x}");
            return;
        }
        if (at.Offset < 0)
            throw Error(node, $"{what}: address {at} is out of range: before the start of mapping \"{at.Name}\"");
        if (_mappings[at.Name] is { } mapLen && ((ulong)at.Offset > mapLen || length > mapLen - (ulong)at.Offset || (length == 0 && (ulong)at.Offset == mapLen)))
            throw Error(node, $"{what}: address range {at} + 0x{length:x} is out of range: mapping \"{at.Name}\" is 0x{mapLen:x} bytes long");
    }

    private void CheckBufferSize(JNode node, ulong length, string what)
    {
        if (length > 1UL << 30)
            throw Error(node, $"{what}: 0x{length:x} bytes is more than the 1 GiB a scenario buffer may hold");
    }

    private AddressExpr AddressExpression(JNode node)
    {
        if (node.Kind == JsonValueKind.Number)
            return new AddressExpr(null, (long)Number(node, "address"));
        if (node.Kind != JsonValueKind.String)
            throw Error(node, $"an address is a number or a string like \"buf+0x1000\", not {node.KindName}");
        var (name, value) = Evaluate(node, allowName: true);
        if (value < long.MinValue || value > long.MaxValue)
            throw Error(node, $"bad number \"{node.Text}\": out of range");
        return new AddressExpr(name, (long)value);
    }

    // ---- values ----

    /// <summary>A non-negative 64-bit number: a JSON number, or a string: "0x1000", "8GiB", "2^43-8GiB", "4*4096".</summary>
    private ulong Number(JNode node, string field)
    {
        if (node.Kind == JsonValueKind.Number)
        {
            if (!ulong.TryParse(node.Text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong v))
                throw Error(node, $"bad number for {field}: {node.Text} is not a non-negative integer below 2^64");
            return v;
        }
        if (node.Kind != JsonValueKind.String)
            throw Error(node, $"bad number for {field}: expected a number or a string like \"8GiB\", not {node.KindName}");
        var (_, value) = Evaluate(node, allowName: false);
        if (value < 0 || value > ulong.MaxValue)
            throw Error(node, $"bad number for {field}: \"{node.Text}\" is out of range (0..2^64-1)");
        return (ulong)value;
    }

    private int Int32(JNode node, string field)
    {
        if (node.Kind == JsonValueKind.Number && int.TryParse(node.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v))
            return v;
        if (node.Kind == JsonValueKind.String)
        {
            var (_, value) = Evaluate(node, allowName: false);
            if (value >= int.MinValue && value <= uint.MaxValue)
                return unchecked((int)(long)value);
        }
        throw Error(node, $"bad number for {field}: expected a 32-bit integer, got {(node.Kind is JsonValueKind.Number or JsonValueKind.String ? node.Text : node.KindName)}");
    }

    private byte Byte(JNode node, string field)
    {
        ulong v = Number(node, field);
        if (v > 255)
            throw Error(node, $"bad number for {field}: {v} is not a byte (0..255)");
        return (byte)v;
    }

    private byte[] Hex(JNode node)
    {
        string t = node.Text!.Replace(" ", "", StringComparison.Ordinal);
        if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            t = t[2..];
        try
        {
            return Convert.FromHexString(t);
        }
        catch (FormatException)
        {
            throw Error(node, $"bytes: \"{node.Text}\" is not hex bytes (like \"0xdeadbeef\")");
        }
    }

    private (string? Name, Int128 Value) Evaluate(JNode node, bool allowName)
    {
        string text = node.Text!;
        var expr = new NumberExpression(text);
        string? problem = expr.Parse(out var name, out var value);
        if (problem is not null)
            throw Error(node, $"bad {(allowName ? "address" : "number")} \"{text}\": {problem}");
        if (name is not null && !allowName)
            throw Error(node, $"bad number \"{text}\": \"{name}\" is not a number (names are allowed only in addresses)");
        return (name, value);
    }

    private bool Bool(JNode node, string field) => node.Kind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Error(node, $"{field} must be true or false, not {node.KindName}"),
    };

    private string String(JNode node, string field) =>
        node.Kind == JsonValueKind.String ? node.Text! : throw Error(node, $"{field} must be a string, not {node.KindName}");

    private string Identifier(JNode node, string what)
    {
        string s = String(node, what);
        if (s.Length == 0 || !(char.IsAsciiLetter(s[0]) || s[0] == '_') || !s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.'))
            throw Error(node, $"\"{s}\" is not usable as {what}: use letters, digits, '_' and '.', starting with a letter");
        return s;
    }

    private List<JNode> Array(JNode node, string field) =>
        node.Kind == JsonValueKind.Array ? node.Items : throw Error(node, $"{field} must be an array, not {node.KindName}");

    private JNode Required(JNode obj, string field, string what) =>
        obj[field] ?? throw Error(obj, $"{what}: missing field \"{field}\"");

    private string Handle(JNode s, string what)
    {
        var h = Required(s, "handle", what);
        string handle = String(h, "handle");
        if (!_handles.Contains(handle))
            throw Error(h, $"{what}: unknown handle \"{handle}\": no earlier dmirror.open step names it");
        return handle;
    }

    private string KnownBuffer(JNode node, string what)
    {
        string b = String(node, "buffer");
        if (!_buffers.Contains(b))
            throw Error(node, $"{what}: unknown buffer \"{b}\": no earlier step fills or reads into it");
        return b;
    }

    private T Enum<T>(JNode node, string field) where T : struct, Enum
    {
        string s = String(node, field);
        foreach (var v in System.Enum.GetValues<T>())
            if (string.Equals(v.ToString(), s, StringComparison.OrdinalIgnoreCase))
                return v;
        throw Error(node, $"unknown {field} \"{s}\"; known: {string.Join(", ", System.Enum.GetNames<T>())}");
    }

    /// <summary>Flags written "Read|Write", as an array of names, as "None", or as a number.</summary>
    private T Flags<T>(JNode node, string field) where T : struct, Enum
    {
        if (node.Kind == JsonValueKind.Number)
            return (T)System.Enum.ToObject(typeof(T), Number(node, field));
        IEnumerable<JNode> parts = node.Kind == JsonValueKind.Array ? node.Items : [node];
        ulong bits = 0;
        foreach (var p in parts)
        {
            foreach (var name in String(p, field).Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                bool found = false;
                foreach (var v in System.Enum.GetValues<T>())
                {
                    if (string.Equals(v.ToString(), name, StringComparison.OrdinalIgnoreCase))
                    {
                        bits |= Convert.ToUInt64(v, CultureInfo.InvariantCulture);
                        found = true;
                        break;
                    }
                }
                if (!found)
                    throw Error(p, $"unknown {field} flag \"{name}\"; known: {string.Join(", ", System.Enum.GetNames<T>())}");
            }
        }
        return (T)System.Enum.ToObject(typeof(T), bits);
    }

    private void CheckFields(JNode obj, string what, string[] allowed)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (k, _) in obj.Properties)
        {
            if (!seen.Add(k))
            {
                var (l, c) = obj.NamePositions[k];
                throw new ScenarioFileException(_file, l, c, $"{what}: field \"{k}\" is given twice");
            }
            if (!allowed.Contains(k))
            {
                var (l, c) = obj.NamePositions[k];
                throw new ScenarioFileException(_file, l, c, $"{what}: unknown field \"{k}\"; allowed: {string.Join(", ", allowed)}");
            }
        }
    }
}
