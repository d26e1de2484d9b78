using System.Reflection;
using System.Text.RegularExpressions;
using Mono.Cecil;
using NetArchTest.Rules;

namespace HmmSim.Architecture.Tests;

/// <summary>The layer table of docs/architecture.md, checked on the compiled kernel: a type may use its
/// own layer and those below it, never one above. A type's layer is the source folder it is declared
/// in, so the folders are the table.</summary>
public sealed partial class LayerTests
{
    /// <summary>Bottom to top. Migrate sits with Mm: migrate_device.c is part of mm/, and gup.c calls
    /// into it (FOLL_LONGTERM migrates device-coherent pages), as in Linux.</summary>
    internal static readonly (string Folder, int Rank)[] Table =
    [
        ("Include", 0), ("Arch", 1), ("Resource", 2), ("Pci", 3), ("Mm", 4), ("Migrate", 4),
        ("Hmm", 5), ("P2pdma", 6), ("Exports", 7),
    ];

    private static readonly Assembly _kernel = typeof(HmmSim.Kernel.KernelState).Assembly;

    [Fact]
    public void EveryKernelSourceFolderIsInTheLayerTable()
    {
        var folders = Directory.GetDirectories(KernelSourceDir()).Select(Path.GetFileName)
            .Where(f => f is not ("bin" or "obj")).Order().ToArray();
        Assert.Equal(Table.Select(t => t.Folder).Order(), folders);
        Assert.Empty(Directory.GetFiles(KernelSourceDir(), "*.cs"));   // every file belongs to a layer
    }

    [Fact]
    public void NoKernelTypeReferencesALayerAboveItsOwn()
    {
        var layers = LayerOfEveryType();
        var upward = new List<string>();
        var result = Types.InAssembly(_kernel).Should()
            .MeetCustomRule(t => UpwardReferences(t, layers, upward) == 0).GetResult();
        Assert.True(result.IsSuccessful, "references up the layer table:\n" + string.Join("\n", upward.Distinct().Order()));
        Assert.Empty(upward);
    }

    [Fact]
    public void TheRuleSeesReferencesBetweenLayers()
    {
        // The same walk over the table turned upside down must find references: the rule is not vacuous.
        var layers = LayerOfEveryType().ToDictionary(kv => kv.Key, kv => 10 - kv.Value);
        var upward = new List<string>();
        Types.InAssembly(_kernel).Should().MeetCustomRule(t => UpwardReferences(t, layers, upward) == 0).GetResult();
        Assert.Contains(upward, u => u.StartsWith("Memmap (", StringComparison.Ordinal) && u.Contains("-> Pfn (", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryKernelTypeHasALayer()
    {
        var layers = LayerOfEveryType();
        var missing = Types.InAssembly(_kernel).GetTypes()
            .Where(t => !t.FullName.Contains('<') && !t.FullName.Contains('/') && !layers.ContainsKey(t.Name))
            .Select(t => t.FullName).ToList();
        Assert.Empty(missing);
    }

    private static int UpwardReferences(TypeDefinition type, IReadOnlyDictionary<string, int> layers, List<string> found)
    {
        var top = type;
        while (top.DeclaringType is not null)
            top = top.DeclaringType;
        if (!layers.TryGetValue(SimpleName(top), out int own))
            return 0;
        int before = found.Count;
        foreach (var dep in Dependencies(type))
        {
            var depTop = dep;
            while (depTop.DeclaringType is not null)
                depTop = depTop.DeclaringType;
            if (depTop.Scope.Name != type.Module.Name && depTop.Scope.Name != type.Module.Assembly.Name.Name)
                continue;
            if (layers.TryGetValue(SimpleName(depTop), out int other) && other > own)
                found.Add($"{SimpleName(top)} ({FolderOf(own)}) -> {SimpleName(depTop)} ({FolderOf(other)})");
        }
        return found.Count - before;
    }

    private static string FolderOf(int rank) => string.Join("/", Table.Where(t => t.Rank == rank).Select(t => t.Folder));

    private static string SimpleName(TypeReference t)
    {
        string n = t.Name;
        int tick = n.IndexOf('`', StringComparison.Ordinal);
        return tick < 0 ? n : n[..tick];
    }

    /// <summary>Every type a type's signatures and method bodies name.</summary>
    private static IEnumerable<TypeReference> Dependencies(TypeDefinition t)
    {
        var refs = new List<TypeReference>();
        void Add(TypeReference? r)
        {
            switch (r)
            {
                case null:
                    return;
                case GenericInstanceType g:
                    Add(g.ElementType);
                    foreach (var a in g.GenericArguments)
                        Add(a);
                    return;
                case TypeSpecification s:
                    Add(s.ElementType);
                    return;
                case GenericParameter:
                    return;
                default:
                    refs.Add(r);
                    return;
            }
        }
        Add(t.BaseType);
        foreach (var i in t.Interfaces)
            Add(i.InterfaceType);
        foreach (var f in t.Fields)
            Add(f.FieldType);
        foreach (var p in t.Properties)
            Add(p.PropertyType);
        foreach (var m in t.Methods)
        {
            Add(m.ReturnType);
            foreach (var p in m.Parameters)
                Add(p.ParameterType);
            if (!m.HasBody)
                continue;
            foreach (var v in m.Body.Variables)
                Add(v.VariableType);
            foreach (var ins in m.Body.Instructions)
            {
                if (ins.Operand is TypeReference tr)
                    Add(tr);
                else if (ins.Operand is MemberReference mr)
                    Add(mr.DeclaringType);
            }
        }
        foreach (var n in t.NestedTypes)
            refs.AddRange(Dependencies(n));
        return refs;
    }

    /// <summary>Top-level type name → rank, from the folder of the file that declares it.</summary>
    internal static Dictionary<string, int> LayerOfEveryType()
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        var root = KernelSourceDir();
        foreach (var (folder, rank) in Table)
        {
            foreach (var file in Directory.GetFiles(Path.Combine(root, folder), "*.cs", SearchOption.AllDirectories))
            {
                foreach (Match m in TopLevelType().Matches(File.ReadAllText(file)))
                    map[m.Groups[1].Value] = rank;
            }
        }
        return map;
    }

    [GeneratedRegex(@"^(?:public |internal )(?:(?:sealed|static|readonly|abstract|partial|ref) )*(?:class|struct|enum|interface|record(?: struct| class)?) (\w+)", RegexOptions.Multiline)]
    private static partial Regex TopLevelType();

    internal static string KernelSourceDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "HmmSim.sln")))
                return Path.Combine(dir.FullName, "src", "HmmSim.Kernel");
        }
        throw new DirectoryNotFoundException("HmmSim.sln not found above " + AppContext.BaseDirectory);
    }
}
