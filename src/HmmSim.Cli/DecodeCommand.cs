using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using HmmSim.Cli.Layout;
using HmmSim.Kernel;

namespace HmmSim.Cli;

/// <summary>`hmmsim decode pagemap|snapshot|swap|hmm-pfn VALUE`: the numbers found in kernel logs and
/// test output, field by field.</summary>
internal static class DecodeCommand
{
    private const int TypeShift = 58;   // SWP_TYPE_SHIFT: 64 - MAX_SWAPFILES_SHIFT - 1

    public static Command Create()
    {
        var cmd = new Command("decode", "Decode a number from a log or test: a /proc/pid/pagemap entry, a dmirror snapshot byte, a swp_entry_t value or an hmm_range_fault pfn. Example: hmmsim decode pagemap 0x8600000000012345");
        cmd.Subcommands.Add(Verb("pagemap", "A 64-bit /proc/pid/pagemap entry (present, swapped, soft-dirty, exclusive, file/shared, PFN or swap type/offset).", Pagemap));
        cmd.Subcommands.Add(Verb("snapshot", "A dmirror SNAPSHOT byte (HMM_DMIRROR_PROT_*).", Snapshot));
        cmd.Subcommands.Add(Verb("swap", "A swp_entry_t value (type in bits 58-62, offset below), with the type named in both designs.", Swap));
        cmd.Subcommands.Add(Verb("hmm-pfn", "An hmm_range_fault output pfn (HMM_PFN_* flags, map order, PFN).", HmmPfnFields));
        return cmd;
    }

    private static Command Verb(string name, string description, Func<ulong, List<KeyValuePair<string, string>>> decode)
    {
        var cmd = new Command(name, description);
        var value = new Argument<string>("value") { Description = "Decimal or 0x-hex." };
        var json = CliOptions.Json("Print one JSON object {\"kind\", \"value\", \"fields\": {name: text}}.");
        cmd.Arguments.Add(value);
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            string text = r.GetValue(value)!;
            if (!TryParse(text, out ulong v))
            {
                r.InvocationConfiguration.Error.WriteLine($"hmmsim decode {name}: '{text}' is not a 64-bit number (decimal or 0x-hex)");
                return 2;
            }
            var fields = decode(v);
            var output = r.InvocationConfiguration.Output;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new { kind = name, value = Units.Hex(v), fields = fields.ToDictionary(f => f.Key, f => f.Value) }));
                return 0;
            }
            output.WriteLine($"{name} {Units.Hex(v)}");
            int width = fields.Max(f => f.Key.Length);
            foreach (var (k, s) in fields)
                output.WriteLine($"  {k.PadRight(width)}  {s}");
            return 0;
        });
        return cmd;
    }

    public static bool TryParse(string text, out ulong value)
    {
        text = text.Trim().Replace("_", "", StringComparison.Ordinal);
        return text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private static string YesNo(bool b) => b ? "yes" : "no";

    public static List<KeyValuePair<string, string>> Pagemap(ulong raw)
    {
        var e = new PagemapEntry(raw);
        var f = new List<KeyValuePair<string, string>>
        {
            new("present", YesNo(e.Present)),
            new("swapped", YesNo(e.Swapped)),
        };
        if (e.Pfn is { } pfn)
            f.Add(new("pfn", $"{Units.Hex(pfn)} (physical address {Units.Hex(pfn << 12)})"));
        if (e.SwapType is { } type)
        {
            f.Add(new("swap type", $"{type}: {TypeName(type, DevicePrivateDesign.PhysicalAddressSpace)} (today), {TypeName(type, DevicePrivateDesign.DeviceAddressSpace)} (redesign)"));
            f.Add(new("swap offset", $"{Units.Hex(e.SwapOffset!.Value)} (for a device-private entry: the PFN today, the device-private index in the redesign)"));
        }
        f.Add(new("soft-dirty", YesNo(e.SoftDirty)));
        f.Add(new("exclusive", YesNo(e.Exclusive)));
        f.Add(new("file/shared", YesNo(e.FileOrShared)));
        f.Add(new("uffd-wp", YesNo(e.UffdWriteProtected)));
        return f;
    }

    public static List<KeyValuePair<string, string>> Snapshot(ulong raw) =>
        raw > 0xFF
            ? [new("error", "a snapshot entry is one byte (0..0xff)")]
            : [new("prot", ((DmirrorProt)(byte)raw).ToText())];

    public static List<KeyValuePair<string, string>> Swap(ulong raw)
    {
        uint type = (uint)(raw >> TypeShift) & 0x1F;
        ulong offset = raw & ((1UL << TypeShift) - 1);
        return
        [
            new("type", $"{type}"),
            new("today", TypeName(type, DevicePrivateDesign.PhysicalAddressSpace)),
            new("redesign", TypeName(type, DevicePrivateDesign.DeviceAddressSpace)),
            new("offset", Units.Hex(offset)),
        ];
    }

    public static List<KeyValuePair<string, string>> HmmPfnFields(ulong raw)
    {
        var flags = new List<string>();
        void Flag(ulong bit, string name)
        {
            if ((raw & bit) != 0)
                flags.Add(name);
        }
        Flag(HmmPfn.Valid, "HMM_PFN_VALID");
        Flag(HmmPfn.Write, "HMM_PFN_WRITE");
        Flag(HmmPfn.Error, "HMM_PFN_ERROR");
        Flag(HmmPfn.DmaMapped, "HMM_PFN_DMA_MAPPED");
        Flag(HmmPfn.P2pDma, "HMM_PFN_P2PDMA");
        Flag(HmmPfn.P2pDmaBus, "HMM_PFN_P2PDMA_BUS");
        Flag(HmmPfn.DevicePrivate, "HMM_PFN_DEVICE_PRIVATE");
        Flag(HmmPfn.AllowP2p, "HMM_PFN_ALLOW_P2P");
        int order = HmmPfn.ToMapOrder(raw);
        ulong pfn = raw & ~HmmPfn.Flags;
        return
        [
            new("flags", flags.Count == 0 ? "none" : string.Join('|', flags)),
            new("map order", $"{order} ({Units.Human(4096UL << order)} mapping)"),
            new("pfn", (raw & HmmPfn.DevicePrivate) != 0 ? $"{Units.Hex(pfn)} (a device-private index in the redesign)" : Units.Hex(pfn)),
        ];
    }

    /// <summary>The swap.h type numbering on x86-64: the top five types, counted down from 31, are the
    /// PTE marker, the device types (three today, six in the redesign), migration (three) and
    /// hwpoison; the rest are swap files.</summary>
    public static string TypeName(uint type, DevicePrivateDesign design)
    {
        int device = design == DevicePrivateDesign.DeviceAddressSpace ? 6 : 3;
        uint maxSwapfiles = (uint)(32 - device - 3 - 1 - 1);
        if (type < maxSwapfiles)
            return $"swap file {type}";
        uint i = type - maxSwapfiles;
        string[] names = design == DevicePrivateDesign.DeviceAddressSpace
            ? ["SWP_HWPOISON", "SWP_MIGRATION_READ", "SWP_MIGRATION_READ_EXCLUSIVE", "SWP_MIGRATION_WRITE", "SWP_DEVICE_WRITE", "SWP_DEVICE_READ", "SWP_DEVICE_EXCLUSIVE",
                "SWP_MIGRATION_DEVICE_READ", "SWP_MIGRATION_DEVICE_READ_EXCLUSIVE", "SWP_MIGRATION_DEVICE_WRITE", "SWP_PTE_MARKER"]
            : ["SWP_HWPOISON", "SWP_MIGRATION_READ", "SWP_MIGRATION_READ_EXCLUSIVE", "SWP_MIGRATION_WRITE", "SWP_DEVICE_WRITE", "SWP_DEVICE_READ", "SWP_DEVICE_EXCLUSIVE", "SWP_PTE_MARKER"];
        return names[i];
    }
}
