package dev.mirrord.intellij.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class EnvMergeTest {
    private static JsonObject config(String json) {
        return JsonParser.parseString(json).getAsJsonObject();
    }

    @Test
    void launchEnvCarriesTheUsersVariablesAndUnsetsAsNull() {
        Map<String, String> user = new LinkedHashMap<>();
        user.put("USER_VAR", "kept");
        JsonObject env = EnvMerge.toLaunchEnv(user, Set.of("DROP_ME"));
        assertEquals(config("{\"USER_VAR\":\"kept\",\"DROP_ME\":null}"), env);
    }

    @Test
    void preparedVariablesWinUsersAreKeptAndNullsUnset() {
        EnvMerge merge = EnvMerge.fromPrepared(config(
                "{\"type\":\"java\",\"env\":{\"USER_VAR\":\"kept\",\"LD_PRELOAD\":\"/x/libmirrord_layer.so\","
                        + "\"PORT\":8080,\"DROP_ME\":null,\"SHARED\":\"from-pod\"}}"));
        Map<String, String> base = new LinkedHashMap<>();
        base.put("SHARED", "local");
        base.put("DROP_ME", "inherited");
        base.put("PATH", "/usr/bin");
        Map<String, String> merged = merge.applyTo(base);
        assertEquals("kept", merged.get("USER_VAR"));
        assertEquals("/x/libmirrord_layer.so", merged.get("LD_PRELOAD"));
        assertEquals("8080", merged.get("PORT"), "a non-string value is written as its JSON text");
        assertEquals("from-pod", merged.get("SHARED"));
        assertEquals("/usr/bin", merged.get("PATH"), "variables the service did not mention stay");
        assertTrue(!merged.containsKey("DROP_ME"), "null unsets, inherited ones too");
        assertEquals(Set.of("DROP_ME"), merge.toUnset());
        assertEquals("inherited", base.get("DROP_ME"), "the base map is not changed");
    }

    @Test
    void aConfigurationWithoutAnEnvMapIsNamed() {
        var e = assertThrows(MirrordIdeException.class, () -> EnvMerge.fromPrepared(config("{\"environment\":[]}")));
        assertEquals(MirrordIdeException.Kind.MALFORMED, e.kind());
        assertTrue(e.getMessage().contains("without an \"env\" map"), e.getMessage());
        assertTrue(e.getMessage().contains("\"java\""), e.getMessage());
    }
}
