# kinglet — ESP-IDF component registration. The top-level CMakeLists.txt
# includes this file and returns when ESP_PLATFORM is set, so the
# repository is an ESP-IDF component as it stands (components/kinglet, or
# EXTRA_COMPONENT_DIRS, or the component manager with idf_component.yml).
# Options: the root Kconfig (menuconfig "kinglet"). Paths are relative to
# the component directory. tests/manifests_test.py checks the source list
# against the tree (nothing missing, nothing that does not exist).

set(KINGLET_IDF_SRCS
  core/kl_base64.c
  core/kl_bosh.c
  core/kl_cache.c
  core/kl_dns.c
  core/kl_engine.c
  core/kl_http.c
  core/kl_app.c
  core/kl_post.c
  core/kl_sasl2.c
  core/kl_scram.c
  core/kl_session.c
  core/kl_sm.c
  core/kl_status.c
  core/kl_ws.c
  core/kl_xml.c
  core/kl_xw.c
)
set(KINGLET_IDF_INCLUDE_DIRS include)
if(CONFIG_KINGLET_MBEDTLS)
  list(APPEND KINGLET_IDF_SRCS
    port/mbedtls/kl_crypto_mbedtls.c
    port/mbedtls/kl_tls.c
    port/mbedtls/kl_tls_bind.c
  )
  list(APPEND KINGLET_IDF_INCLUDE_DIRS port/mbedtls)
endif()

idf_component_register(SRCS ${KINGLET_IDF_SRCS}
                       INCLUDE_DIRS ${KINGLET_IDF_INCLUDE_DIRS}
                       PRIV_INCLUDE_DIRS core
                       REQUIRES mbedtls)

# KL_ENABLE_* from Kconfig: PUBLIC, because they change struct layouts
# (kl_client_t, kl_session_t) and the application must see the values the
# component was built with.
foreach(_kl_switch SCRAM S2S CACHE FULL LEGACY_SESSION SASL2 SM STREAM_LIMITS APP PUBSUB MUC CSI BOSH WS)
  if(CONFIG_KINGLET_ENABLE_${_kl_switch})
    target_compile_definitions(${COMPONENT_LIB} PUBLIC KL_ENABLE_${_kl_switch}=1)
  else()
    target_compile_definitions(${COMPONENT_LIB} PUBLIC KL_ENABLE_${_kl_switch}=0)
  endif()
endforeach()
target_compile_definitions(${COMPONENT_LIB} PUBLIC
  KL_RX_BUF_SIZE=${CONFIG_KINGLET_RX_BUF_SIZE}
  KL_TX_BUF_SIZE=${CONFIG_KINGLET_TX_BUF_SIZE})
