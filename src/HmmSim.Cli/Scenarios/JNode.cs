using System.Text;
using System.Text.Json;

namespace HmmSim.Cli.Scenarios;

/// <summary>A JSON value with the line and column where it starts, so a scenario error can say where.
/// (JsonDocument keeps no positions; this tree is built with Utf8JsonReader.)</summary>
internal sealed class JNode
{
    public JsonValueKind Kind { get; private init; }
    public int Line { get; private init; }
    public int Column { get; private init; }
    /// <summary>A string's value, or a number's raw text.</summary>
    public string? Text { get; private init; }
    public bool Bool { get; private init; }
    public List<JNode> Items { get; } = [];
    public List<KeyValuePair<string, JNode>> Properties { get; } = [];
    /// <summary>Where each property name is, for "unknown field" errors.</summary>
    public Dictionary<string, (int Line, int Column)> NamePositions { get; } = new(StringComparer.Ordinal);

    public JNode? this[string name] => Properties.FirstOrDefault(p => p.Key == name).Value;

    public string KindName => Kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    /// <summary>Parses UTF-8 JSON (comments and trailing commas allowed). Throws ScenarioFileException.</summary>
    public static JNode Parse(byte[] utf8, string file)
    {
        var lineStarts = new List<int> { 0 };
        for (int i = 0; i < utf8.Length; i++)
            if (utf8[i] == '\n')
                lineStarts.Add(i + 1);
        (int, int) Pos(long offset)
        {
            int idx = lineStarts.BinarySearch((int)offset);
            if (idx < 0)
                idx = ~idx - 1;
            int col = Encoding.UTF8.GetCharCount(utf8, lineStarts[idx], (int)offset - lineStarts[idx]) + 1;
            return (idx + 1, col);
        }
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        try
        {
            if (!reader.Read())
                throw new ScenarioFileException(file, 1, 1, "the file is empty: a scenario is a JSON object");
            var root = ReadValue(ref reader, Pos);
            if (reader.Read())
            {
                var (l, c) = Pos(reader.TokenStartIndex);
                throw new ScenarioFileException(file, l, c, "invalid JSON: more text after the scenario object");
            }
            return root;
        }
        catch (JsonException e)
        {
            int line = (int)(e.LineNumber ?? 0) + 1;
            int col = (int)(e.BytePositionInLine ?? 0) + 1;
            string msg = e.Message;
            int cut = msg.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (cut > 0)
                msg = msg[..cut].TrimEnd();
            throw new ScenarioFileException(file, line, col, "invalid JSON: " + msg);
        }
    }

    private static JNode ReadValue(ref Utf8JsonReader r, Func<long, (int, int)> pos)
    {
        var (line, col) = pos(r.TokenStartIndex);
        switch (r.TokenType)
        {
            case JsonTokenType.StartObject:
                {
                    var node = new JNode { Kind = JsonValueKind.Object, Line = line, Column = col };
                    while (r.Read() && r.TokenType != JsonTokenType.EndObject)
                    {
                        string name = r.GetString()!;
                        node.NamePositions[name] = pos(r.TokenStartIndex);
                        r.Read();
                        node.Properties.Add(new(name, ReadValue(ref r, pos)));
                    }
                    return node;
                }
            case JsonTokenType.StartArray:
                {
                    var node = new JNode { Kind = JsonValueKind.Array, Line = line, Column = col };
                    while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                        node.Items.Add(ReadValue(ref r, pos));
                    return node;
                }
            case JsonTokenType.String:
                return new JNode { Kind = JsonValueKind.String, Line = line, Column = col, Text = r.GetString() };
            case JsonTokenType.Number:
                return new JNode { Kind = JsonValueKind.Number, Line = line, Column = col, Text = Encoding.UTF8.GetString(r.ValueSpan) };
            case JsonTokenType.True:
                return new JNode { Kind = JsonValueKind.True, Line = line, Column = col, Bool = true };
            case JsonTokenType.False:
                return new JNode { Kind = JsonValueKind.False, Line = line, Column = col };
            default:
                return new JNode { Kind = JsonValueKind.Null, Line = line, Column = col };
        }
    }
}
