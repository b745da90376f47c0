package dev.mirrord.intellij.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RunKindTest {
    private static JsonObject json(String s) {
        return JsonParser.parseString(s).getAsJsonObject();
    }

    @Test
    void eachKindIsSentAsATypeWhoseAdapterReadsAnEnvMap() {
        assertEquals("java", RunKind.JAVA.debugType());
        assertEquals("java", RunKind.GRADLE.debugType());
        assertEquals("python", RunKind.PYTHON.debugType());
        assertEquals("node", RunKind.NODE.debugType());
        assertEquals("go", RunKind.GO.debugType());
        JsonObject python = RunKind.PYTHON.launch(Map.of("USER_VAR", "kept"), Set.of("DROP_ME"), null);
        assertEquals(json("{\"type\":\"python\",\"request\":\"launch\",\"env\":{\"USER_VAR\":\"kept\",\"DROP_ME\":null}}"), python);
        assertFalse(python.has("dlvToolPath"));
    }

    @Test
    void aGoLaunchNamesTheProgramTheServiceRunsBehindItsLink() {
        JsonObject go = RunKind.GO.launch(Map.of(), Set.of(), "/tmp/GoLand/___go_build_main");
        assertEquals("/tmp/GoLand/___go_build_main", go.get("dlvToolPath").getAsString());
        assertThrows(IllegalArgumentException.class, () -> RunKind.GO.launch(Map.of(), Set.of(), " "));
        PrepareLaunchResult prepared = new PrepareLaunchResult(json(
                "{\"type\":\"go\",\"dlvToolPath\":\"/home/dev/.cache/mirrord/go/dlv\",\"env\":{\"MIRRORD_DLV\":\"/tmp/GoLand/___go_build_main\"}}"), "s1");
        assertEquals("/home/dev/.cache/mirrord/go/dlv", RunKind.routedProgram(prepared));
    }

    @Test
    void aGoAnswerWithoutTheLinkIsNamed() {
        for (String config : new String[] {"{\"type\":\"go\",\"env\":{}}", "{\"dlvToolPath\":\"\"}", "{\"dlvToolPath\":{}}"}) {
            var e = assertThrows(MirrordIdeException.class, () -> RunKind.routedProgram(new PrepareLaunchResult(json(config), "s1")));
            assertEquals(MirrordIdeException.Kind.MALFORMED, e.kind());
            assertTrue(e.getMessage().contains("without a \"dlvToolPath\"") && e.getMessage().contains("update mirrord"), e.getMessage());
        }
    }

    @Test
    void checkNamesWhatTheKindWouldMiss() {
        PrepareLaunchResult envOnly = new PrepareLaunchResult(json("{\"env\":{\"A\":\"1\"}}"), "s1");
        RunKind.PYTHON.check(envOnly);
        var noLink = assertThrows(MirrordIdeException.class, () -> RunKind.GO.check(envOnly));
        assertTrue(noLink.getMessage().contains("dlvToolPath"), noLink.getMessage());
        var noEnv = assertThrows(MirrordIdeException.class,
                () -> RunKind.NODE.check(new PrepareLaunchResult(json("{\"dlvToolPath\":\"/l\"}"), "s1")));
        assertTrue(noEnv.getMessage().contains("without an \"env\" map"), noEnv.getMessage());
    }
}
