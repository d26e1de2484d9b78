using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Xml.Linq;

namespace HmmSim.Architecture.Tests;

/// <summary>The exported API is read in an IDE: every public type and member of the contract and the
/// kernel has an entry in the XML documentation file the build writes next to the
/// assembly. This holds even if CS1591 were switched off in a project file.</summary>
public sealed class DocumentationTests
{
    // test_hmm exports nothing (its types are internal to the contract), so the two assemblies with a
    // public surface are checked; CS1591 covers test_hmm should it ever export a type.
    public static TheoryData<string> Documented => new() { "HmmSim", "HmmSim.Kernel" };

    [Theory]
    [MemberData(nameof(Documented))]
    public void EveryPublicTypeAndMemberHasAnXmlDocEntry(string assemblyName)
    {
        var asm = Assembly.Load(assemblyName);
        var documented = DocumentedIds(asm);
        var expected = VisibleMemberIds(asm).ToList();
        Assert.NotEmpty(expected);
        var missing = expected.Where(id => !documented.Contains(id)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} public members of {assemblyName} have no XML doc:\n{string.Join("\n", missing)}");
    }

    [Fact]
    public void TheIdsComputedHereAreTheCompilers()
    {
        // Guards the test itself: ids of each shape (type, overloaded method with ref/out, generic and
        // span parameters, constructor, operator, property, enum field) are found in the files, so an
        // empty "missing" list above means documented and not "every id misspelt".
        var contract = DocumentedIds(typeof(Machine).Assembly);
        var kernel = DocumentedIds(typeof(HmmSim.Kernel.KernelState).Assembly);
        Assert.Contains("T:HmmSim.Machine", contract);
        Assert.Contains("M:HmmSim.Machine.#ctor(HmmSim.MachineConfig)", contract);
        var mmap = typeof(Process).GetMethod(nameof(Process.Mmap),
            [typeof(ulong), typeof(ulong), typeof(Prot), typeof(MapFlags), typeof(ulong).MakeByRefType(), typeof(ShmemFile), typeof(ulong)])!;
        Assert.Equal("M:HmmSim.Process.Mmap(System.UInt64,System.UInt64,HmmSim.Prot,HmmSim.MapFlags,System.UInt64@,HmmSim.ShmemFile,System.UInt64)", Id(mmap));
        Assert.Contains(Id(mmap), contract);
        Assert.Contains(Id(typeof(Process).GetMethod(nameof(Process.Read))!), contract);
        Assert.Contains("P:HmmSim.MachineConfig.RamBytes", contract);
        Assert.Contains("F:HmmSim.Errno.EINVAL", contract);
        Assert.Contains(Id(typeof(Machine).GetMethod(nameof(Machine.LoadModule))!), contract);
        Assert.Contains(Id(typeof(HmmSim.Kernel.Pfn).GetMethod("op_LessThan")!), kernel);
        Assert.Contains(Id(typeof(HmmSim.Kernel.MmuNotifier).GetMethod(nameof(HmmSim.Kernel.MmuNotifier.MmuIntervalNotifierInsert))!), kernel);
    }

    /// <summary>The member ids in the XML documentation file beside the assembly.</summary>
    private static HashSet<string> DocumentedIds(Assembly asm)
    {
        var path = Path.ChangeExtension(asm.Location, ".xml");
        Assert.True(File.Exists(path), $"{path} is missing: GenerateDocumentationFile must be on for {asm.GetName().Name}");
        return XDocument.Load(path).Descendants("member")
            .Select(m => (string?)m.Attribute("name")).OfType<string>().ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The ids of every type a user of the assembly sees and of its visible members, as the C#
    /// compiler writes them (ECMA-334 annex D). Members the compiler synthesizes (record equality,
    /// accessors, enum value__, the implicit parameterless constructor, which reflection cannot tell
    /// from a declared one) have no place for a comment and are left out.</summary>
    private static IEnumerable<string> VisibleMemberIds(Assembly asm)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var t in asm.GetExportedTypes())
        {
            yield return "T:" + TypeName(t);
            if (typeof(Delegate).IsAssignableFrom(t))
                continue;
            foreach (var m in t.GetMembers(all))
            {
                if (m is Type || m.IsDefined(typeof(CompilerGeneratedAttribute)) || !IsVisible(m))
                    continue;
                if (m is MethodBase mb && mb.IsSpecialName && !mb.Name.StartsWith("op_", StringComparison.Ordinal) && mb is not ConstructorInfo)
                    continue;   // property and event accessors
                if (m is FieldInfo f && f.IsSpecialName)
                    continue;   // an enum's value__
                if (m is ConstructorInfo c && (c.IsStatic || c.GetParameters().Length == 0))
                    continue;
                yield return m switch
                {
                    MethodBase method => Id(method),
                    PropertyInfo p => "P:" + TypeName(t) + "." + p.Name + Parameters(p.GetIndexParameters()),
                    FieldInfo field => "F:" + TypeName(t) + "." + field.Name,
                    EventInfo e => "E:" + TypeName(t) + "." + e.Name,
                    _ => throw new InvalidOperationException($"unexpected member kind {m.MemberType}"),
                };
            }
        }
    }

    private static bool IsVisible(MemberInfo m) => m switch
    {
        MethodBase b => b.IsPublic || b.IsFamily || b.IsFamilyOrAssembly,
        FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
        PropertyInfo p => p.GetAccessors(nonPublic: true).Any(a => a.IsPublic || a.IsFamily || a.IsFamilyOrAssembly),
        EventInfo e => e.AddMethod is { } add && (add.IsPublic || add.IsFamily || add.IsFamilyOrAssembly),
        _ => false,
    };

    private static string Id(MethodBase m)
    {
        var sb = new StringBuilder("M:").Append(TypeName(m.DeclaringType!)).Append('.');
        sb.Append(m is ConstructorInfo ? "#ctor" : m.Name);
        if (m.IsGenericMethodDefinition)
            sb.Append("``").Append(m.GetGenericArguments().Length);
        sb.Append(Parameters(m.GetParameters()));
        if (m is MethodInfo mi && m.Name is "op_Implicit" or "op_Explicit")
            sb.Append('~').Append(ParamType(mi.ReturnType));
        return sb.ToString();
    }

    private static string Parameters(ParameterInfo[] ps) =>
        ps.Length == 0 ? "" : "(" + string.Join(",", ps.Select(p => ParamType(p.ParameterType))) + ")";

    private static string TypeName(Type t) => t.FullName!.Replace('+', '.');

    private static string ParamType(Type t)
    {
        if (t.IsByRef)
            return ParamType(t.GetElementType()!) + "@";
        if (t.IsPointer)
            return ParamType(t.GetElementType()!) + "*";
        if (t.IsArray)
            return ParamType(t.GetElementType()!) + (t.GetArrayRank() == 1 ? "[]" : "[" + string.Join(",", Enumerable.Repeat("0:", t.GetArrayRank())) + "]");
        if (t.IsGenericParameter)
            return (t.DeclaringMethod is null ? "`" : "``") + t.GenericParameterPosition;
        if (t.IsGenericType)
        {
            var def = t.GetGenericTypeDefinition().FullName!.Replace('+', '.');
            def = def[..def.IndexOf('`', StringComparison.Ordinal)];
            return def + "{" + string.Join(",", t.GetGenericArguments().Select(ParamType)) + "}";
        }
        return TypeName(t);
    }
}
